"""Keeping a lease while work runs: renew it every third of its length, and stop the
work when it cannot be kept.

A lease decides which replica acts on an incident (or posts a note).  Renewing it
only between steps forced the lease to outlast the longest step (two minutes by
default), so a dead replica left its incident untouched that long.  With a
heartbeat the lease can be short (15 s): a live replica keeps it however long a
step, a note post or a Slack ``Retry-After`` wait takes, and a dead one loses it
within one lease.

Losing the lease (another replica holds it, or the store could not be reached
before it ran out) cancels the guarded block at once: the other replica may act
from then on, so this one must not.  The block then raises ``LeaseLost``.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from feedguard.core.log import get_logger

from .steps import LeaseLost
from .store import Store, StoreUnavailable

log = get_logger(__name__)

# Renewals per lease: one late or failed renewal still leaves time for the next one.
BEATS_PER_LEASE = 3


def beat_interval(lease_seconds: float) -> float:
    return lease_seconds / BEATS_PER_LEASE


class Heartbeat:
    """``async with Heartbeat(store, name, owner, ttl):`` (the lease already taken).

    Raises ``LeaseLost`` out of the block when the lease was lost while it ran.
    """

    def __init__(self, store: Store, name: str, owner: str, ttl_seconds: float) -> None:
        self.store = store
        self.name = name
        self.owner = owner
        self.ttl = ttl_seconds
        self.interval = beat_interval(ttl_seconds)
        self.lost: str | None = None  # why, once lost
        self._guarded: asyncio.Task[object] | None = None
        self._beat: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._guarded = asyncio.current_task()
        self._beat = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._beat is not None
        assert self._guarded is not None
        self._beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._beat
        if self.lost is None:
            return
        if exc_type is asyncio.CancelledError:
            # Our own cancellation: it ends here, as LeaseLost (a cancellation from
            # outside, e.g. shutdown, is still pending and goes on after this).
            self._guarded.uncancel()
        raise LeaseLost(f"{self.name}: {self.lost}")

    def check(self) -> None:
        """Raise LeaseLost if the lease was lost (for code that must not start anything)."""
        if self.lost is not None:
            raise LeaseLost(f"{self.name}: {self.lost}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self.interval)
            try:
                held = await self.store.acquire(self.name, self.owner, self.ttl)
            except StoreUnavailable as exc:
                # Keep trying while the lease may still run; give up before the next
                # beat would come after it ran out (another replica may act then).
                if loop.time() + self.interval - renewed >= self.ttl:
                    self._lose(f"store unavailable, lease ran out ({exc})")
                    return
                log.warning("lease renewal failed, retrying", lease=self.name, error=str(exc))
                continue
            if not held:
                self._lose("held by another replica")
                return
            renewed = loop.time()

    def _lose(self, why: str) -> None:
        self.lost = why
        log.warning("lease lost: stopping", lease=self.name, why=why)
        assert self._guarded is not None
        self._guarded.cancel()
