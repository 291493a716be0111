"""``Retry-After`` (RFC 9110 section 10.2.3): how long a server that answered 429 or 503
asked the client to wait, in seconds.

The value is ``delay-seconds`` (digits) or an ``HTTP-date``.  A server's garbage
is no reason to fail a step, so anything unreadable is None (no wait asked),
never an exception; a date already past is 0.  How long to actually wait (a cap)
is the caller's choice; a huge value comes back as ``CEILING`` at most, so it stays
a finite number (a log line with ``Infinity`` in it is not JSON).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

# The statuses RFC 9110 pairs with Retry-After for a request to repeat.
RETRY_AFTER_STATUSES = frozenset({429, 503})

# A year: more than any caller waits, and finite whatever the digits say.
CEILING = 365 * 86_400.0

# delay-seconds is 1*DIGIT; a decimal fraction is tolerated (some servers send one).
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``now`` (default: the current time), or None."""
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return min(float(text), CEILING)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), CEILING)


def retry_after_of(status: int, headers: Mapping[str, Any] | None) -> float | None:
    """The wait a 429 or 503 answer asked for (None for any other status, or none asked).

    ``headers``: any mapping of header names (aiohttp's CIMultiDict, urllib3's
    HTTPHeaderDict are case-insensitive; a plain dict is searched without case).
    """
    if status not in RETRY_AFTER_STATUSES or not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return parse_retry_after(value if isinstance(value, str) else None)
