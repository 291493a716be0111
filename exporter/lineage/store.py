"""Redis writes of the OpenLineage intake: loads (never backwards) and failures (once each)."""

from __future__ import annotations

import hashlib
import json

import redis.asyncio as aioredis

from feedguard.core.keys import last_success_key, lineage_failure_key, lineage_seen_key
from feedguard.core.record import SET_IF_NEWER

from .event import LineageEvent

# Count a FAIL/ABORT once: a marker per event (SET NX) with a lifetime.  Then keep
# it as the provider's failure unless the kept one is of the same DAG run (the
# first failure of a run is its cause: a task's error, before the DAG's own
# "task_failure") or of a newer one.
_RECORD_FAILURE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
if KEYS[2] then
  local current = redis.call('GET', KEYS[2])
  if current then
    local ok, doc = pcall(cjson.decode, current)
    if ok and type(doc) == 'table' then
      if doc['dag_run_id'] == ARGV[4] then
        return 1
      end
      if tonumber(doc['event_time']) and tonumber(doc['event_time']) > tonumber(ARGV[2]) then
        return 1
      end
    end
  end
  redis.call('SET', KEYS[2], ARGV[3])
end
return 1
"""


def event_digest(event: LineageEvent) -> str:
    """One event's identity: a re-delivery has the same type, run, job and time."""
    parts = (event.event_type, event.run_id, event.job_namespace, event.job_name)
    text = "\0".join([*parts, repr(event.event_time)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class LineageStore:
    def __init__(self, client: aioredis.Redis, seen_ttl_seconds: int) -> None:
        self._set_if_newer = client.register_script(SET_IF_NEWER)
        self._record_failure = client.register_script(_RECORD_FAILURE)
        self._seen_ttl = seen_ttl_seconds

    async def record_loads(self, loads: tuple[tuple[str, str], ...], at: float) -> list[bool]:
        """Per (provider, dataset): True when its last success moved forward to ``at``."""
        keys = [last_success_key(provider, dataset) for provider, dataset in loads]
        moved = await self._set_if_newer(keys=keys, args=[repr(at)])
        return [bool(flag) for flag in moved]

    async def record_failure(
        self, event: LineageEvent, provider: str | None, received_at: float
    ) -> bool:
        """True the first time this failure arrives; its message is kept for the provider."""
        keys = [lineage_seen_key(event_digest(event))]
        document = ""
        if provider is not None:
            keys.append(lineage_failure_key(provider))
            document = json.dumps(
                {
                    "provider": provider,
                    "event_type": event.event_type,
                    "event_time": event.event_time,
                    "job_namespace": event.job_namespace,
                    "job": event.job_name,
                    "run_id": event.run_id,
                    "dag_run_id": event.dag_run_id,
                    "message": event.error_message,
                    "received_at": received_at,
                }
            )
        first = await self._record_failure(
            keys=keys,
            args=[self._seen_ttl, repr(event.event_time), document, event.dag_run_id],
        )
        return bool(first)
