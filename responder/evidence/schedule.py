"""When evidence is gathered: as an incident opens (slot 0) and at each hourly
update (slot n), once per slot across replicas, before that slot's note.

The note scheduler ``wait``s for a slot's evidence before it renders the
initial or hourly note, so the note quotes what was found.  In dry run the
snapshot holds the plan (what would be read) instead of what was read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from feedguard.core.log import get_logger

from .. import flags
from .. import incidents as inc
from ..common import Common, Part
from ..store import StoreUnavailable
from .gather import EvidenceGatherer

log = get_logger(__name__)

Doc = dict[str, Any]


def due_slots(doc: Doc, now: float, interval: float) -> list[int]:
    """Slot 0 at opening, then the current hour's slot; none once resolved."""
    if doc["state"] == inc.RESOLVED:
        return []
    done = set(doc.get("evidence_slots") or ())
    due = [] if 0 in done else [0]
    slot = int((now - doc["opened_at"]) // interval) if interval > 0 else 0
    if slot >= 1 and slot not in done:
        due.append(slot)
    return due


def record(doc: Doc, slot: int, snapshot: Doc | None, keep: int, now: float) -> None:
    """Slot ``slot`` is done: keep its snapshot (None: another replica gathered it)."""
    slots = doc.setdefault("evidence_slots", [])
    if slot not in slots:
        slots.append(slot)
    if snapshot is None:
        return
    kept = doc.setdefault("evidence", [])
    kept.append(snapshot)
    del kept[:-keep]
    what = "evidence planned (dry run)" if snapshot.get("dry_run") else "evidence gathered"
    inc.add_event(doc, now, f"{what}: slot {slot}", summary=snapshot.get("summary", []))


class EvidenceScheduler(Part):
    def __init__(
        self,
        common: Common,
        gatherer: EvidenceGatherer,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        super().__init__(common)
        self.gatherer = gatherer
        self._spawn = spawn
        self._done: dict[tuple[str, int], asyncio.Event] = {}

    def _event(self, incident_id: str, slot: int) -> asyncio.Event:
        return self._done.setdefault((incident_id, slot), asyncio.Event())

    def schedule(self, doc: Doc) -> None:
        provider = self.config.providers.get(doc["provider"])
        if provider is None or not self.gatherer.wanted(provider):
            return
        for slot in due_slots(doc, self.clock(), self.config.notes.update_interval_seconds):
            key = (doc["id"], slot)
            if key not in self._done:
                self._event(*key)
                self._spawn(self._gather(doc["id"], slot))

    async def wait(self, incident_id: str, slot: int) -> None:
        """Until this replica's gathering of the slot is over (at most its timeout)."""
        event = self._done.get((incident_id, slot))
        if event is None:
            return
        try:
            async with asyncio.timeout(self.config.evidence.timeout_seconds + 1):
                await event.wait()
        except TimeoutError:
            log.warning("evidence still being gathered: note posted without it", slot=slot)

    async def _gather(self, incident_id: str, slot: int) -> None:
        with structlog.contextvars.bound_contextvars(incident_id=incident_id, evidence=slot):
            try:
                await self._gather_once(incident_id, slot)
            except StoreUnavailable as exc:
                log.warning("store unavailable while gathering evidence", error=str(exc))
            finally:
                # The slot is recorded on the incident by now: later notes read it there.
                self._done.pop((incident_id, slot), asyncio.Event()).set()

    async def _gather_once(self, incident_id: str, slot: int) -> None:
        settings = self.config.evidence
        claimed = await self.store.claim_once(f"evidence:{incident_id}:{slot}")
        doc = await self.store.get("incident", incident_id) if claimed else None
        provider = self.config.providers.get(doc["provider"]) if doc else None
        snapshot: Doc | None = None
        if doc is not None and provider is not None:
            now = self.clock()
            snapshot = {"slot": slot, "gathered_at": now}
            dry = await flags.effective(self.config, self.store, "dry_run")
            if dry["enabled"]:
                snapshot.update(dry_run=True, **self.gatherer.plan(provider))
            else:
                try:
                    async with asyncio.timeout(settings.timeout_seconds):
                        found = await self.gatherer.gather(provider, inc.view(doc), now)
                    snapshot.update(dry_run=False, **found)
                except Exception as exc:  # evidence must never stop the runbook
                    error = f"{type(exc).__name__}: {exc}"
                    log.warning("evidence gathering failed", error=error)
                    snapshot.update(dry_run=False, error=error, summary=[f"not gathered: {error}"])

        if snapshot is not None:
            log.info("evidence gathered", summary=snapshot.get("summary", []))

        def change(current: Doc | None) -> tuple[Doc | None, None]:
            if current is None:
                return None, None
            record(current, slot, snapshot, settings.keep_snapshots, self.clock())
            return current, None

        await self.store.update("incident", incident_id, change)
