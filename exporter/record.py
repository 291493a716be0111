"""``record_success``: what an ingestion task calls when a load succeeds."""

from __future__ import annotations

import math
import time

import redis

from .catalog import Catalog
from .keys import last_success_key

# Never move a dataset's last success backwards: a backfill finishing after a
# live load must not make fresh data look stale.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

MAX_CLOCK_SKEW_SECONDS = 300.0


def record_success(
    client: redis.Redis,
    catalog: Catalog,
    provider: str,
    dataset: str,
    at: float | None = None,
    *,
    now: float | None = None,
) -> bool:
    """Store the time of a successful load; True when it moved the value forward.

    Raises ValueError, naming the problem, for a provider or dataset not in the
    catalog or a timestamp that cannot be a load time.  Nothing is written then.
    """
    catalog.require(provider, dataset)
    now = time.time() if now is None else now
    stamp = now if at is None else float(at)
    if not math.isfinite(stamp) or stamp <= 0:
        raise ValueError(f"--at must be positive epoch seconds, got {at!r}")
    if stamp > now + MAX_CLOCK_SKEW_SECONDS:
        raise ValueError(
            f"--at {stamp:.0f} is {stamp - now:.0f}s in the future; a load cannot succeed later"
        )
    changed = client.eval(_SET_IF_NEWER, 1, last_success_key(provider, dataset), repr(stamp))
    return bool(changed)
