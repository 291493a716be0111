"""When each provider's probe started failing, kept in Redis for the responder's
detection lag (runbook 7): ``feedguard:probe:failing_since:<provider>``.

A failing probe sets the key to now only if it is absent (the first failure of
the streak wins, across scrapes and exporter replicas) and refreshes its
lifetime; a passing probe deletes it.  The lifetime bounds how long an onset
outlives an exporter that stopped probing.  Redis down or read-only must never
cost a scrape: a failed write is a counted warning (logged when writes start
and stop failing, not every scrape) and the probe metrics are served as usual.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter

from feedguard.core.keys import probe_failing_since_key
from feedguard.core.log import get_logger

from .base import Deadline

log = get_logger(__name__)


class ProbeOnsets:
    def __init__(
        self,
        client: aioredis.Redis,
        registry: CollectorRegistry,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._failing = False  # whether the last write failed (log transitions only)
        self.write_failures = Counter(
            "external_exporter_probe_onset_write_failures",
            "Scrapes whose write of the probes' failing-since keys to Redis failed "
            "(Redis down or read-only); the scrape itself is served as usual.",
            registry=registry,
        )

    async def record(self, results: Sequence[tuple[str, bool]], deadline: Deadline) -> None:
        """One pipeline for this scrape's (provider, success) pairs; never raises."""
        if not results:
            return
        now = repr(self._clock())
        pipe = self._client.pipeline(transaction=False)
        for provider, success in results:
            key = probe_failing_since_key(provider)
            if success:
                pipe.delete(key)
            else:
                pipe.set(key, now, nx=True, ex=self._ttl)
                pipe.expire(key, self._ttl)
        try:
            async with asyncio.timeout(deadline.remaining()):
                await pipe.execute()
        except Exception as exc:  # Redis down, read-only, slow: the scrape goes on
            self.write_failures.inc()
            if not self._failing:
                self._failing = True
                log.warning(
                    "cannot record probe onsets in Redis", error=f"{type(exc).__name__}: {exc}"
                )
            return
        if self._failing:
            self._failing = False
            log.info("probe onsets recorded in Redis again")
