"""Detection lag (runbook 7): from when the data went stale, or the provider's probe
first failed, to the first notification the responder received.

The probe onset is the earliest of the exporter's own record of the first failed
probe of the current streak (``feedguard:probe:failing_since:<provider>``) and the
``since`` of a failing cached status (``external:provider_status:<provider>``),
for platforms whose collectors write one.

Pure: the intake reads Redis and hands the values in.  The onset is the earliest
of the known ones that is not after the notification; with none known the lag
is unknown (``None``), never a guess.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

# Runbook 7: "adjust thresholds or add probes if detection lag > 5 min".
REVIEW_THRESHOLD_SECONDS = 300.0
FAILING = ("down", "degraded")


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def stale_onset(last_successes: Mapping[str, Any], sla_seconds: float) -> tuple[float, str] | None:
    """(when the first dataset went stale, which) from raw Redis values; None if none known."""
    known = [(t + sla_seconds, d) for d, raw in last_successes.items() if (t := _epoch(raw))]
    return min(known) if known else None


def probe_onset(raw_status: Any) -> float | None:
    """When the provider's current failing status began: ``since`` of the cached status
    JSON (``external:provider_status:<provider>``) while it is down or degraded."""
    if isinstance(raw_status, bytes):
        raw_status = raw_status.decode("utf-8", "replace")
    if not isinstance(raw_status, str):
        return None
    try:
        value = json.loads(raw_status)
    except ValueError:
        return None
    if not isinstance(value, dict) or str(value.get("status", "")).lower() not in FAILING:
        return None
    return _epoch(value.get("since"))


def probe_failed_at(raw_status: Any, raw_failing_since: Any) -> float | None:
    """The probe onset: the earliest of the exporter's failing-since key and the
    failing status's ``since``; None when neither is known."""
    if isinstance(raw_failing_since, bytes):
        raw_failing_since = raw_failing_since.decode("ascii", "replace")
    known = [t for t in (probe_onset(raw_status), _epoch(raw_failing_since)) if t is not None]
    return min(known) if known else None


def detection_lag(
    first_notification_at: float,
    stale: tuple[float, str] | None,
    probe_failed_at: float | None,
) -> dict[str, Any] | None:
    """The incident's ``detection`` record, or None when no onset is known."""
    onsets: list[tuple[float, str, str | None]] = []
    if stale is not None and stale[0] <= first_notification_at:
        onsets.append((stale[0], "data_stale", stale[1]))
    if probe_failed_at is not None and probe_failed_at <= first_notification_at:
        onsets.append((probe_failed_at, "probe_failed", None))
    if not onsets:
        return None
    onset, source, dataset = min(onsets, key=lambda o: o[0])
    seconds = first_notification_at - onset
    return {
        "seconds": seconds,
        "source": source,
        "dataset": dataset,
        "onset_at": onset,
        "first_notification_at": first_notification_at,
        "over_threshold": seconds > REVIEW_THRESHOLD_SECONDS,
    }
