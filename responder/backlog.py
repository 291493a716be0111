"""The inbox backlog: how many recorded transitions wait to be applied, and for how long.

The webhook refuses new notifications with a 503 while the backlog is over
``inbox.max_depth`` or older than ``inbox.max_age_seconds`` (Alertmanager's
webhook notifier retries 5xx answers, and only those: notify/util.go
``Retrier.Check``), /readyz reports a backlog older than
``inbox.ready_max_age_seconds``, and /metrics publishes both numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .metrics import Metrics
from .store import Store

# The webhook reads the backlog at most this often (one store query a second under load).
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class Backlog:
    depth: int
    oldest_age_seconds: float  # 0 when the inbox is empty


class InboxMonitor:
    def __init__(self, store: Store, clock: Callable[[], float], metrics: Metrics) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._last: Backlog | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def current(self) -> Backlog:
        """The backlog as read within the last second (StoreUnavailable when unreadable)."""
        loop = asyncio.get_running_loop()
        if self._last is not None and loop.time() - self._read_at < REFRESH_SECONDS:
            return self._last
        async with self._lock:  # one reader at a time; the others take its answer
            if self._last is not None and loop.time() - self._read_at < REFRESH_SECONDS:
                return self._last
            return await self.read()

    async def read(self) -> Backlog:
        """Read it now and publish it as the two gauges."""
        depth, oldest = await self.store.inbox_stats()
        age = max(0.0, self.clock() - oldest) if oldest is not None else 0.0
        backlog = Backlog(depth, age)
        self.metrics.inbox_depth.set(depth)
        self.metrics.inbox_oldest_age.set(age)
        self._last, self._read_at = backlog, asyncio.get_running_loop().time()
        return backlog
