"""ISO 8601 times from outside (OpenLineage events, consumer APIs): an offset is required."""

from __future__ import annotations

from datetime import datetime


def iso_epoch(value: str) -> float:
    """Epoch seconds of an ISO 8601 date-time with a UTC offset; ValueError saying what is wrong.

    A time without an offset is refused, not guessed to be UTC: a wrong guess
    would shift a freshness value by hours without anyone noticing.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {value[:64]!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"needs a UTC offset (Z or +HH:MM): {value[:64]!r}")
    return moment.timestamp()
