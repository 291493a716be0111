"""ISO 8601 times beside the epoch values of the HTTP API's answers.

The ledger keeps epoch seconds (cheap to compare, what Prometheus speaks);
people and most clients read ``2026-09-21T13:46:40Z``.  Every numeric field
named ``at``, ``*_at`` or ``last_success_before`` gets a sibling ``<name>_iso``
(``null`` stays ``null``, and gets a ``null`` sibling).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

_EPOCH_FIELDS = frozenset({"at", "last_success_before"})


def iso_utc(epoch: float) -> str:
    """``2026-09-21T13:46:40Z``; milliseconds only when there are any."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _is_epoch_field(name: str) -> bool:
    return name in _EPOCH_FIELDS or name.endswith("_at")


def with_iso_times(value: Any) -> Any:
    """A copy of a JSON value with ``<name>_iso`` beside every epoch field, at any depth."""
    if isinstance(value, list):
        return [with_iso_times(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        out[key] = with_iso_times(item)
        if not _is_epoch_field(key) or f"{key}_iso" in value:
            continue
        if item is None:
            out[f"{key}_iso"] = None
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out[f"{key}_iso"] = iso_utc(float(item))
    return out
