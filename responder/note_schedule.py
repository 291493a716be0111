"""Posting an incident's situation notes when they fall due (the initial note, the
hourly updates, the resolution), each exactly once across replicas.

Which notes are due is ``note_slots.due_notes``; the notifier (``notes/``) renders
and delivers them.  A note is posted under the lease ``note:<incident>:<slot>``,
kept by a heartbeat while the post (and any Slack ``Retry-After`` wait) lasts; a
second replica leaves it alone meanwhile.  Before posting, the attempt is written
on the incident; a slot that has an attempt but no result belonged to a replica
that died mid-post: the next holder asks the notifier to look for the note in
Slack (message metadata) and posts it only when it is not there.  One incident's
notes go out in order: a note not yet settled holds back the later ones, so the
resolution still threads under the initial note after a takeover.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from opentelemetry.trace import StatusCode

from feedguard.core.log import get_logger

from . import incidents as inc
from . import verified_recovery as vr
from .common import Common, Part
from .evidence.schedule import EvidenceScheduler
from .heartbeat import Heartbeat
from .note_slots import due_notes, note_attempt, note_done
from .plugins import CannotConfirm, NoteKind, NoteRequest, Notifier
from .steps import LeaseLost
from .store import StoreUnavailable

log = get_logger(__name__)

Doc = dict[str, Any]


class NoteScheduler(Part):
    def __init__(
        self,
        common: Common,
        notifier: Notifier | None,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        super().__init__(common)
        self.notifier = notifier
        self._spawn = spawn  # the engine's: background work it waits for and cancels
        self._locks: dict[str, asyncio.Lock] = {}
        # Set by the engine when evidence is gathered: notes wait for their slot's.
        self.evidence: EvidenceScheduler | None = None

    def due(self, doc: Doc) -> list[tuple[NoteKind, int]]:
        if self.notifier is None:
            return []
        return due_notes(doc, self.clock(), self.config.notes.update_interval_seconds)

    def schedule(self, doc: Doc) -> None:
        """Gather due evidence and post the incident's due notes, in the background."""
        if self.evidence is not None:
            self.evidence.schedule(doc)
        due = self.due(doc)
        if due:
            self._spawn(self._post_all(doc["id"], due))

    async def _post_all(self, incident_id: str, due: list[tuple[NoteKind, int]]) -> None:
        lock = self._locks.setdefault(incident_id, asyncio.Lock())
        try:
            async with lock:  # one incident's notes go out in order
                await self._post_in_order(incident_id, due)
        finally:
            if not lock.locked() and self._locks.get(incident_id) is lock:
                del self._locks[incident_id]  # kept while posting only: one per incident ever grew

    async def _post_in_order(self, incident_id: str, due: list[tuple[NoteKind, int]]) -> None:
        for kind, slot in due:
            with structlog.contextvars.bound_contextvars(incident_id=incident_id, note=kind):
                try:
                    settled = await self._post(incident_id, kind, slot)
                except StoreUnavailable as exc:
                    log.warning("store unavailable while posting a note", error=str(exc))
                    return
                except LeaseLost as exc:
                    log.warning("note lease lost: another replica posts it", error=str(exc))
                    return
                if not settled:
                    return  # another replica holds it: the later notes wait for it

    async def _post(self, incident_id: str, kind: NoteKind, slot: int) -> bool:
        """Settle one note slot; False when another replica is posting it now."""
        key = f"{kind}:{slot}"
        lease = f"note:{incident_id}:{key}"
        ttl = self.config.executor.lease_seconds
        if not await self.store.acquire(lease, self.owner, ttl):
            return False
        try:
            async with Heartbeat(self.store, lease, self.owner, ttl):
                await self._post_held(incident_id, kind, slot, key)
        finally:
            with contextlib.suppress(StoreUnavailable):
                await self.store.release(lease, self.owner)
        return True

    async def _post_held(self, incident_id: str, kind: NoteKind, slot: int, key: str) -> None:
        assert self.notifier is not None
        timed = kind in ("initial", "update")  # not resolution, verification, approval
        if self.evidence is not None and timed:
            await self.evidence.wait(incident_id, slot)
        doc = await self.store.get("incident", incident_id)
        if doc is None or key in doc["note_slots"]:
            return  # settled meanwhile (by another replica)
        if kind == "verification" and not vr.reply_due(doc, slot):
            return  # a retry restarted the verification meanwhile: the next reply tells
        interval = self.config.notes.update_interval_seconds
        next_at = doc["opened_at"] + (slot + 1) * interval if timed else None
        at = time.time()  # compared with Slack's message timestamps, not the clock
        request = NoteRequest(
            kind=kind,
            slot=slot,
            incident=inc.view(doc),
            now=self.clock(),
            next_update_at=next_at,
            progress=_Progress(self, incident_id, key, at),
            incident_url=self.config.incident_url(incident_id),
        )
        # The note joins the trace of the incident's latest update; so do its log
        # lines and its timeline entry.
        attributes = {"feedguard.incident_id": incident_id}
        with self.tracing.span(f"note {kind}", doc.get("trace"), attributes=attributes) as span:
            earlier = (doc.get("note_attempts") or {}).get(key)
            if earlier is not None and await self._found(incident_id, key, request, earlier):
                return
            await self.record_attempt(incident_id, key, at, "sending")
            try:
                merged = await self.notifier.post(request)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("note failed", error=error)
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                self.metrics.notes.labels(kind, "failure").inc()
                await self._done(incident_id, key, None, error)
                return
            self.metrics.notes.labels(kind, "success").inc()
            await self._done(incident_id, key, dict(merged or {}), None)

    async def _found(self, incident_id: str, key: str, request: NoteRequest, earlier: Doc) -> bool:
        """A replica stopped while posting this note: True when it is settled now
        (found in Slack and recorded, or recorded as failed because no one can tell)."""
        assert self.notifier is not None
        try:
            found = await self.notifier.find(request, float(earlier["at"]))
        except CannotConfirm as exc:
            if earlier.get("state") == "waiting":
                return False  # it stopped waiting out a 429: nothing was posted
            error = (
                f"not confirmed after a replica stopped while posting it ({exc}); not posted again"
            )
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            error = f"could not look for it after a replica stopped while posting it: {why}"
        else:
            if found is None:
                return False  # never reached Slack: post it
            log.info("note found in Slack after a takeover: not posted again")
            self.metrics.notes.labels(request.kind, "success").inc()
            await self._done(incident_id, key, dict(found), None)
            return True
        log.warning("note failed", error=error)
        self.metrics.notes.labels(request.kind, "failure").inc()
        await self._done(incident_id, key, None, error)
        return True

    async def record_attempt(self, incident_id: str, key: str, at: float, state: str) -> None:
        def change(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None or key in doc["note_slots"]:
                return None, None
            note_attempt(doc, key, self.owner, at, state)
            return doc, None

        await self.store.update("incident", incident_id, change)

    async def _done(
        self, incident_id: str, key: str, merged: dict[str, Any] | None, error: str | None
    ) -> None:
        now = self.clock()

        def change(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None:
                return None, None
            note_done(doc, key, merged, error, now)
            return doc, None

        await self.store.update("incident", incident_id, change)


class _Progress:
    """A note's delivery progress, written on the incident (see ``NoteProgress``)."""

    def __init__(self, scheduler: NoteScheduler, incident_id: str, key: str, at: float) -> None:
        self.scheduler = scheduler
        self.incident_id = incident_id
        self.key = key
        self.at = at

    async def waiting(self) -> None:
        await self.scheduler.record_attempt(self.incident_id, self.key, self.at, "waiting")

    async def sending(self) -> None:
        await self.scheduler.record_attempt(self.incident_id, self.key, self.at, "sending")
