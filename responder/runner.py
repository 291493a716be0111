"""Running one incident: under its lease, post due notes, run pending steps in order
(the executor runs each; a step needing approval waits for a decision, and the
steps after it with it), pass the recovery gate, run the resolved steps, settle.

The state changes are ``progress``; this module orders them and does the I/O.
Across replicas the ``incident:ID`` lease decides who runs an incident (kept by a
heartbeat while it runs, ``heartbeat.py``); within a replica, one lock per incident
being run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from opentelemetry.trace import StatusCode

from feedguard.core.log import get_logger

from . import incidents as inc
from . import progress
from .approval import needs_approval
from .approval_gate import ApprovalGate
from .common import Common, Part
from .executor import Executor, LeaseLost
from .heartbeat import Heartbeat
from .note_schedule import NoteScheduler
from .recovery import RecoveryGate
from .store import StoreUnavailable
from .verify import Verifier

log = get_logger(__name__)

Doc = dict[str, Any]

# States whose notes (resolution, verification reply) may fall due within a run.
FINAL_NOTES = (inc.VERIFYING, inc.RESOLVED, inc.NEEDS_ATTENTION)


class IncidentRunner(Part):
    def __init__(
        self,
        common: Common,
        executor: Executor,
        recovery: RecoveryGate,
        notes: NoteScheduler,
        verifier: Verifier,
    ) -> None:
        super().__init__(common)
        self.executor = executor
        self.recovery = recovery
        self.notes = notes
        self.verifier = verifier
        self.approvals = ApprovalGate(common)
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(self, incident_id: str) -> None:
        lock = self._locks.setdefault(incident_id, asyncio.Lock())
        if lock.locked():
            return  # already being served by this replica
        async with lock:
            with structlog.contextvars.bound_contextvars(incident_id=incident_id):
                try:
                    await self._run(incident_id)
                except LeaseLost:
                    log.warning("lease lost: another replica took over the incident")
                except StoreUnavailable as exc:
                    log.warning("store unavailable while running the incident", error=str(exc))
        if not lock.locked() and self._locks.get(incident_id) is lock:
            del self._locks[incident_id]  # one lock per incident being served

    async def _run(self, incident_id: str) -> None:
        lease = f"incident:{incident_id}"
        ttl = self.config.executor.lease_seconds
        if not await self.store.acquire(lease, self.owner, ttl):
            return  # another replica runs it

        async def renew() -> None:
            if not await self.store.acquire(lease, self.owner, ttl):
                raise LeaseLost(incident_id)

        try:
            # Renewed in the background while anything below runs (a step, a probe):
            # the lease can be short, and a survivor takes over within it.
            async with Heartbeat(self.store, lease, self.owner, ttl):
                await self._serve(incident_id, renew)
        finally:
            with contextlib.suppress(StoreUnavailable):
                await self.store.release(lease, self.owner)

    async def _serve(self, incident_id: str, renew: Callable[[], Awaitable[None]]) -> None:
        doc = await self.store.get("incident", incident_id)
        if doc is None:
            return
        self.notes.schedule(doc)
        doc = await self._auto_retry(incident_id, doc)
        doc = await self._run_pending(incident_id, renew, doc)
        if doc is not None and doc["state"] == inc.RECOVERING and await self.recovery.check(doc):
            doc = await self._run_pending(incident_id, renew, None)
        if doc is not None and doc["state"] == inc.VERIFYING:
            doc = await self.verifier.check(doc)  # one poll when due, no waiting here
        if doc is not None and doc["state"] in FINAL_NOTES:
            self.notes.schedule(doc)  # the resolution note, the verification reply

    async def _run_pending(
        self, incident_id: str, renew: Callable[[], Awaitable[None]], doc: Doc | None
    ) -> Doc | None:
        """Run pending steps in order; returns the incident as last read."""
        while True:
            if doc is None:
                doc = await self.store.get("incident", incident_id)
                if doc is None:
                    return None
            item = inc.next_work(doc)
            if item is None:
                if inc.settled_state(doc) != doc["state"]:
                    return await self._settle(incident_id)
                return doc
            if item["status"] == inc.AWAITING_APPROVAL:
                if await self.approvals.expire(incident_id, doc):
                    doc = None
                    continue
                return doc  # the steps after it wait for the decision too
            if needs_approval(item):
                if item["phase"] == "firing" and doc["state"] in (inc.OPEN, inc.STABILISED):
                    await self._set_state(incident_id, inc.STABILISING, "running firing steps")
                doc = await self.approvals.request(incident_id, item)
                if doc is not None:
                    self.notes.schedule(doc)  # the note asking for a decision
                continue
            await self._run_item(incident_id, renew, doc, item)
            doc = None
            await renew()

    async def _run_item(
        self, incident_id: str, renew: Callable[[], Awaitable[None]], doc: Doc, item: Doc
    ) -> None:
        """One step, as a span in the trace of the incident update that planned it."""
        name = inc.step_what(item)
        attributes = {
            "feedguard.incident_id": incident_id,
            "feedguard.step.id": item["id"],
            "feedguard.step.phase": item["phase"],
        }
        with self.tracing.span(f"step {name}", doc.get("trace"), attributes=attributes) as span:
            provider = self.config.providers.get(doc["provider"])
            if item["phase"] == "firing" and doc["state"] in (inc.OPEN, inc.STABILISED):
                doc = await self._set_state(incident_id, inc.STABILISING, "running firing steps")
            if provider is None:
                ok = False  # the provider left the catalog since the incident opened
            else:
                ok = await self.executor.run_item(doc, item, provider, renew)
            span.set_attribute("feedguard.step.ok", ok)
            if not ok:
                span.set_status(StatusCode.ERROR, "step failed")
            await self._finish_item(incident_id, item["id"], ok)

    async def _auto_retry(self, incident_id: str, doc: Doc) -> Doc | None:
        """Steps that failed only transiently go back to pending once their breakers let
        a call through (closed, or half-open after the reset), a bounded number of times."""
        limit = self.config.executor.auto_retries
        candidates = progress.transient_failures(doc, limit)
        breakers = self.executor.breakers
        ready = [
            step
            for step, actions in candidates.items()
            if all(breakers.may_try(self._circuit(name)) for name in actions)
        ]
        if not ready:
            return doc
        now = self.clock()

        def change(current: Doc | None) -> tuple[Doc | None, Doc | None]:
            if current is None or not progress.auto_retry(current, ready, limit, now):
                return None, current
            return current, current

        updated: Doc | None = await self.store.update("incident", incident_id, change)
        log.warning("retrying transiently failed steps", incident_id=incident_id, steps=ready)
        return updated

    def _circuit(self, action: str) -> str:
        found = self.executor.actions.get(action)
        return found.circuit if found is not None else action

    async def _settle(self, incident_id: str) -> Doc | None:
        notes = self.notes.notifier is not None

        def change(doc: Doc | None) -> tuple[Doc | None, tuple[str | None, Doc | None]]:
            if doc is None:
                return None, (None, None)
            before = doc["state"]
            verify = self.verifier.plan(doc["provider"])
            changed = progress.settle(doc, self.clock(), notes=notes, verify=verify)
            return (doc if changed else None), (before, doc)

        before, settled = await self.store.update("incident", incident_id, change)
        if settled is not None and before != inc.NEEDS_ATTENTION == settled["state"]:
            log.error(
                "incident needs attention",
                incident_id=incident_id,
                provider=settled.get("provider"),
            )
        return settled

    async def _set_state(self, incident_id: str, state: str, why: str) -> Doc:
        now = self.clock()

        def change(doc: Doc | None) -> tuple[Doc | None, Doc]:
            assert doc is not None
            progress.set_state(doc, state, now, why)
            return doc, doc

        updated: Doc = await self.store.update("incident", incident_id, change)
        return updated

    async def _finish_item(self, incident_id: str, item_id: str, ok: bool) -> None:
        now = self.clock()

        def change(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None or not progress.finish_item(doc, item_id, ok, now):
                return None, None
            return doc, None

        await self.store.update("incident", incident_id, change)

    async def retry(self, incident_id: str) -> bool:
        """Put an incident's failed steps back to pending and restart a failed
        verification; False when it does not exist."""
        now = self.clock()

        def change(doc: Doc | None) -> tuple[Doc | None, bool]:
            if doc is None:
                return None, False
            verify = self.verifier.plan(doc["provider"])
            return (doc if progress.retry(doc, now, verify) else None), True

        found: bool = await self.store.update("incident", incident_id, change)
        return found
