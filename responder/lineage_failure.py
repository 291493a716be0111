"""The exporter's OpenLineage intake keeps a provider's newest failed job run in
Redis (``feedguard:lineage:last_failure:<provider>``, docs/lineage.md); an incident
opening for that provider carries it when it is recent (docs/responder.md).

Pure: the caller reads the key and passes its raw value.  The value comes from
another process, so anything malformed is dropped, never raised.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

# A failure older than this is history, not the likely cause of a new incident.
LINEAGE_FAILURE_MAX_AGE_SECONDS = 24 * 3600.0
MESSAGE_CHARS = 2000  # what the exporter keeps at most, again here (it may be older)


def lineage_failure(raw: bytes | str | None, now: float) -> dict[str, Any] | None:
    """``{job, event_type, message, at}`` of a failure at most a day old, else None."""
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    at = doc.get("event_time")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return None
    if now - at > LINEAGE_FAILURE_MAX_AGE_SECONDS:
        return None
    job, message, event_type = doc.get("job"), doc.get("message"), doc.get("event_type")
    return {
        "job": job if isinstance(job, str) else "",
        "event_type": event_type if isinstance(event_type, str) else "",
        "message": message[:MESSAGE_CHARS] if isinstance(message, str) else "",
        "at": float(at),
    }
