"""Posting an incident's situation notes when they fall due (the initial note, the
hourly updates, the resolution), each exactly once across replicas.

Which notes are due is ``transitions.due_notes``; the notifier (``notes/``) renders
and delivers them.  A note's slot is claimed in the store before posting, so a
second replica records the slot as taken instead of posting it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from opentelemetry.trace import StatusCode

from feedguard.core.log import get_logger

from . import incidents as inc
from .common import Common, Part
from .evidence.schedule import EvidenceScheduler
from .plugins import NoteKind, NoteRequest, Notifier
from .store import StoreUnavailable
from .transitions import due_notes, note_done

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
        async with lock:  # one incident's notes go out in order
            for kind, slot in due:
                with structlog.contextvars.bound_contextvars(incident_id=incident_id, note=kind):
                    try:
                        await self._post(incident_id, kind, slot)
                    except StoreUnavailable as exc:
                        log.warning("store unavailable while posting a note", error=str(exc))

    async def _post(self, incident_id: str, kind: NoteKind, slot: int) -> None:
        assert self.notifier is not None
        key = f"{kind}:{slot}"
        if not await self.store.claim_once(f"note:{incident_id}:{key}"):
            await self._done(incident_id, key, None, None)  # another replica posts it
            return
        final = kind in ("resolution", "verification")
        if self.evidence is not None and not final:
            await self.evidence.wait(incident_id, slot)
        doc = await self.store.get("incident", incident_id)
        if doc is None:
            return
        interval = self.config.notes.update_interval_seconds
        next_at = None if final else doc["opened_at"] + (slot + 1) * interval
        request = NoteRequest(
            kind=kind, slot=slot, incident=inc.view(doc), now=self.clock(), next_update_at=next_at
        )
        # The note joins the trace of the incident's latest update; so do its log
        # lines and its timeline entry.
        attributes = {"feedguard.incident_id": incident_id}
        with self.tracing.span(f"note {kind}", doc.get("trace"), attributes=attributes) as span:
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
