"""The scheduler: turns recorded transitions into incidents and runs their steps.

``Engine.tick()`` performs all due work once: apply the inbox, run pending
steps (also those left by a restart), probe recovering providers, post due
notes.  Production calls it every ``scheduler.tick_seconds``; the webhook
also ``kick()``s it so a new alert is acted on at once.  Tests advance the
injected clock and call ``await engine.tick()`` then ``await engine.settle()``.

The engine only wires the parts along the data flow and owns the background
tasks: ``intake`` (inbox → incident transitions), ``runner`` (one incident's
steps, under its lease), ``executor`` (a step → its actions → records),
``recovery`` (the health-probe gate), ``verify`` (following the backfill and the
quality suite, one poll at a time), ``note_schedule`` (due notes).  The state
changes themselves are pure functions in ``transitions`` (alerts), ``progress``
(steps, states, retries), ``probe_streak``, ``note_slots`` and ``verified_recovery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from feedguard.core.airflow import AirflowClient
from feedguard.core.log import get_logger
from feedguard.core.tracing import Tracing

from .approval import Decided, Decision
from .circuit import Breakers
from .common import Common
from .config import ResponderConfig
from .evidence import EvidenceGatherer
from .evidence.schedule import EvidenceScheduler
from .executor import Executor
from .intake import Intake
from .metrics import Metrics
from .note_schedule import NoteScheduler
from .plugins import Action, Notifier
from .recovery import RecoveryGate
from .runner import IncidentRunner
from .store import Store, StoreUnavailable
from .verify import Verifier

log = get_logger(__name__)

# A kick waits this long to gather a burst of notifications into one pass over the inbox.
KICK_COALESCE_SECONDS = 0.02
# Under a stream of notifications, passes start at most this often: a pass costs ~20
# store round trips whatever its size, so fewer, larger passes are far cheaper per
# notification (the runbook acts on 15-minute thresholds; 0.1 s is immaterial).
KICK_INTERVAL_SECONDS = 0.1
KICK_RETRIES = 10  # another replica holds the inbox: look again this often, then wait for a tick


class Engine:
    def __init__(
        self,
        config: ResponderConfig,
        store: Store,
        actions: Mapping[str, Action],
        notifier: Notifier | None,
        metrics: Metrics,
        clock: Callable[[], float],
        http: aiohttp.ClientSession | None = None,
        redis: aioredis.Redis | None = None,
        evidence: EvidenceGatherer | None = None,
        airflow: AirflowClient | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.store = store
        common = Common(config, store, metrics, clock, uuid.uuid4().hex, tracing or Tracing.off())
        self.breakers = Breakers(
            config.executor.circuit_failure_threshold,
            config.executor.circuit_reset_seconds,
            clock,
            metrics,
        )
        self.executor = Executor(common, actions, self.breakers)
        self.intake = Intake(common, redis)
        self.notes = NoteScheduler(common, notifier, self._spawn)
        if evidence is not None:
            self.notes.evidence = EvidenceScheduler(common, evidence, self._spawn)
        recovery = RecoveryGate(common, http)
        verifier = Verifier(common, airflow)
        self.runner = IncidentRunner(common, self.executor, recovery, self.notes, verifier)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick_pending = False
        self._kick_task: asyncio.Task[None] | None = None
        self._last_pass = -math.inf  # loop time the last kicked pass started
        self._stopping = asyncio.Event()

    # --- background task bookkeeping -------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        # A fresh context: work started by one webhook request must not log its groupKey.
        task = asyncio.create_task(coro, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settle(self, limit_seconds: float = 30.0) -> None:
        """Wait until background work started so far (kicks, runs, notes) has finished."""
        async with asyncio.timeout(limit_seconds):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Cancel background work; never wait longer than ``grace_seconds``."""
        self.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            if pending:
                log.warning("background tasks still running at shutdown", tasks=len(pending))

    # --- when work happens ---------------------------------------------------------

    def kick(self) -> None:
        """Apply new inbox entries and run their incidents soon (called by the webhook)."""
        self._kick_pending = True
        if self._kick_task is None or self._kick_task.done():
            self._kick_task = self._spawn(self._kicked())

    async def _kicked(self) -> None:
        loop = asyncio.get_running_loop()
        while self._kick_pending:
            since = loop.time() - self._last_pass
            await asyncio.sleep(max(KICK_COALESCE_SECONDS, KICK_INTERVAL_SECONDS - since))
            self._last_pass = loop.time()
            self._kick_pending = False
            try:
                touched = await self.process_inbox(self._serve)
                for _ in range(KICK_RETRIES):
                    if touched is not None:
                        break
                    # Another replica is applying the inbox; it may have finished
                    # before our entries arrived.
                    await asyncio.sleep(KICK_COALESCE_SECONDS * 5)
                    touched = await self.process_inbox(self._serve)
            except StoreUnavailable as exc:
                log.warning("store unavailable while applying the inbox", error=str(exc))
                return
            for incident_id in touched or ():
                self._serve(incident_id)

    def _serve(self, incident_id: str) -> None:
        self._spawn(self.service_incident(incident_id))

    async def run_forever(self) -> None:
        """Tick every ``scheduler.tick_seconds`` until ``stop()``."""
        while not self._stopping.is_set():
            try:
                await self.tick()
            except StoreUnavailable as exc:
                log.warning("store unavailable during tick", error=str(exc))
            except Exception:
                log.exception("tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.scheduler.tick_seconds)

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> None:
        """Perform all due work once (inbox, pending steps, recovery probes, notes)."""
        await self.process_inbox()
        live = await self.store.list("incident", live_only=True)
        results = await asyncio.gather(
            *(self.service_incident(doc["id"]) for doc in live), return_exceptions=True
        )
        for doc, result in zip(live, results, strict=True):
            if isinstance(result, Exception):
                log.error("incident run failed", incident_id=doc["id"], exc_info=result)

    # --- the parts ---------------------------------------------------------------------

    async def process_inbox(self, serve: Callable[[str], Any] | None = None) -> list[str] | None:
        """Apply recorded transitions to incidents; returns the incidents that need a run,
        or None when another replica holds the inbox (``serve``: Intake.process_inbox)."""
        return await self.intake.process_inbox(serve)

    async def service_incident(self, incident_id: str) -> None:
        await self.runner.run(incident_id)

    async def decide(
        self, incident_id: str, step: str, decision: Decision, by: str, via: str
    ) -> Decided:
        """An operator's approve or deny of a step awaiting approval; an approved step
        runs at once."""
        result = await self.runner.approvals.decide(incident_id, step, decision, by, via)
        if result.ok:
            self._spawn(self.service_incident(incident_id))
        return result

    async def retry(self, incident_id: str) -> bool:
        """Put an incident's failed steps back to pending and run them (operator action)."""
        found = await self.runner.retry(incident_id)
        if found:
            self._spawn(self.service_incident(incident_id))
        return found
