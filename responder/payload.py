"""Alertmanager webhook payload (version 4), validated field by field.

Alertmanager's notify/webhook posts ``template.Data`` plus ``version``,
``groupKey`` and ``truncatedAlerts``.  Timestamps are Go's RFC 3339 with up
to nine fractional digits; an unset ``endsAt`` is ``0001-01-01T00:00:00Z``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from feedguard.core.intake import InvalidJSON
from feedguard.core.intake import decode_json as core_decode_json

from .plugins import AlertView


class PayloadError(ValueError):
    """The payload is not a valid webhook message; the text names the field."""


def decode_json(body: bytes) -> Any:
    """``feedguard.core.intake.decode_json`` (orjson, hostile input refused) as a PayloadError."""
    try:
        return core_decode_json(body)
    except InvalidJSON as exc:
        raise PayloadError(str(exc)) from None


def storable(text: str) -> bool:
    """Whether a string from a URL or header can become a key (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$",
    re.ASCII,  # \d is 0-9 only, not every Unicode digit
)
_ZERO_YEAR = 1
_MIN_EPOCH = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_MAX_EPOCH = datetime(9999, 12, 31, tzinfo=UTC).timestamp()


def parse_timestamp(value: Any, path: str) -> float | None:
    """Epoch seconds, or None for Go's zero time (an unset endsAt)."""
    if not isinstance(value, str):
        raise PayloadError(f"{path}: expected an RFC 3339 timestamp string, got {_kind(value)}")
    try:
        return _parse_timestamp(value)
    except ValueError as exc:
        raise PayloadError(f"{path}: {exc}") from None


# Alertmanager re-sends the same startsAt on every repeat: parse each string once.
@functools.lru_cache(maxsize=4096)
def _parse_timestamp(value: str) -> float | None:
    found = _TS_RE.match(value)
    if not found:
        raise ValueError(f"not an RFC 3339 timestamp: {value[:64]!r}")
    year, month, day, hour, minute, second, frac, zone = found.groups()
    if int(year) == _ZERO_YEAR:
        return None
    if zone in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        try:
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        except ValueError:  # an offset of 24 hours or more
            raise ValueError(f"not a valid UTC offset: {value[:64]!r}") from None
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
        epoch = moment.timestamp() + (int(frac) / 10 ** len(frac) if frac else 0.0)
    except (ValueError, OverflowError):
        raise ValueError(f"not a valid date/time: {value[:64]!r}") from None
    if not _MIN_EPOCH <= epoch < _MAX_EPOCH:
        # In UTC it falls outside years 1..9999: no later rendering could show it.
        raise ValueError(f"out of range: {value[:64]!r}")
    return epoch


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


def _string(data: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    if key not in data:
        if required:
            raise PayloadError(f"{path}{key}: required")
        return ""
    value = data[key]
    if not isinstance(value, str):
        raise PayloadError(f"{path}{key}: expected a string, got {_kind(value)}")
    return value


def _labels(data: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{path}{key}: expected an object of strings, got {_kind(value)}")
    # A plain loop: all() over a generator cost twice as much (nine objects a request).
    for name, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{path}{key}.{name}: expected a string, got {_kind(item)}")
    # Freshly decoded JSON, owned by this request: no copy needed.
    return value


@dataclass(frozen=True)
class Alert:
    status: Literal["firing", "resolved"]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    generator_url: str
    fingerprint: str
    starts_at_raw: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def transition_key(self) -> str:
        """The identity of one alert transition: (fingerprint, startsAt, status)."""
        return f"{self.fingerprint}:{self.starts_at!r}:{self.status}"

    def view(self) -> AlertView:
        return AlertView(
            fingerprint=self.fingerprint,
            alertname=self.alertname,
            status=self.status,
            labels=self.labels,
            annotations=self.annotations,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "endsAt": self.ends_at,
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class Notification:
    version: str
    group_key: str
    truncated_alerts: int
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    common_annotations: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]


def _status(data: Mapping[str, Any], path: str) -> Literal["firing", "resolved"]:
    value = _string(data, "status", path)
    if value == "firing":
        return "firing"
    if value == "resolved":
        return "resolved"
    raise PayloadError(f"{path}status: expected 'firing' or 'resolved', got {value[:32]!r}")


def parse_alert(data: Any, index: int) -> Alert:
    path = f"alerts[{index}]."
    if not isinstance(data, dict):
        raise PayloadError(f"alerts[{index}]: expected an object, got {_kind(data)}")
    status = _status(data, path)
    labels = _labels(data, "labels", path)
    fingerprint = _string(data, "fingerprint", path)
    if not fingerprint:
        raise PayloadError(f"{path}fingerprint: must not be empty")
    if "startsAt" not in data:
        raise PayloadError(f"{path}startsAt: required")
    starts_at = parse_timestamp(data["startsAt"], f"{path}startsAt")
    if starts_at is None:
        raise PayloadError(f"{path}startsAt: must be set (got the zero time)")
    ends_at = parse_timestamp(data["endsAt"], f"{path}endsAt") if "endsAt" in data else None
    return Alert(
        status=status,
        labels=labels,
        annotations=_labels(data, "annotations", path),
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=_string(data, "generatorURL", path, required=False),
        fingerprint=fingerprint,
        starts_at_raw=data["startsAt"],
    )


def parse_notification(data: Any) -> Notification:
    """Validate a decoded webhook body; PayloadError names the first bad field."""
    if not isinstance(data, dict):
        raise PayloadError(f"<root>: expected a JSON object, got {_kind(data)}")
    version = _string(data, "version", "")
    if version != "4":
        raise PayloadError(f"version: expected '4', got {version[:16]!r}")
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError(
            f"truncatedAlerts: expected a non-negative integer, got {_kind(truncated)}"
        )
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(f"alerts: expected an array, got {_kind(alerts)}")
    return Notification(
        version=version,
        group_key=_string(data, "groupKey", ""),
        truncated_alerts=truncated,
        status=_status(data, ""),
        receiver=_string(data, "receiver", ""),
        group_labels=_labels(data, "groupLabels", ""),
        common_labels=_labels(data, "commonLabels", ""),
        common_annotations=_labels(data, "commonAnnotations", ""),
        external_url=_string(data, "externalURL", "", required=False),
        alerts=tuple(parse_alert(item, index) for index, item in enumerate(alerts)),
    )
