"""The approval gate's I/O: asking for a decision, the timeout's decision, and an
operator's (API, page, CLI), each a compare-and-set in the store (``approval.py``)."""

from __future__ import annotations

from typing import Any

from feedguard.core.log import get_logger

from . import approval
from .approval import Decided, Decision
from .common import Part

log = get_logger(__name__)

Doc = dict[str, Any]


class ApprovalGate(Part):
    async def request(self, incident_id: str, item: Doc) -> Doc | None:
        """Put a step in ``awaiting_approval``; the incident as written (None: gone)."""
        settings = self.config.approvals
        minutes = item.get("approval_timeout_minutes") or settings.timeout_minutes
        on_timeout = item.get("approval_on_timeout") or settings.on_timeout
        now = self.clock()

        def change(doc: Doc | None) -> tuple[Doc | None, Doc | None]:
            if doc is None or not approval.request(
                doc, item["id"], now, minutes * 60.0, on_timeout
            ):
                return None, doc
            return doc, doc

        updated: Doc | None = await self.store.update("incident", incident_id, change)
        log.warning(
            "step awaits approval",
            incident_id=incident_id,
            step=item["id"],
            timeout_minutes=minutes,
            on_timeout=on_timeout,
        )
        return updated

    async def expire(self, incident_id: str, doc: Doc) -> bool:
        """Decide the waiting steps whose deadline passed; True when one was decided."""
        decided = False
        for step, decision in approval.timed_out(doc, self.clock()):
            result = await self.decide(incident_id, step, decision, "timeout", "timeout")
            decided = result.ok or decided
        return decided

    async def decide(
        self, incident_id: str, step: str, decision: Decision, by: str, via: str
    ) -> Decided:
        """Record one decision; ``Decided.status`` 404 without incident or step, 409 when
        the step is not awaiting approval (decided before, by whom it says)."""
        now = self.clock()

        def change(doc: Doc | None) -> tuple[Doc | None, Decided]:
            if doc is None:
                return None, Decided(False, None, f"no incident {incident_id!r}", 404)
            result = approval.decide(doc, step, decision, by, via, now)
            return (doc if result.ok else None), result

        result: Decided = await self.store.update("incident", incident_id, change)
        if result.ok and result.step is not None:
            outcome = result.step["decision"]["decision"]
            self.metrics.approvals.labels(outcome, via).inc()
            log.warning(
                "step decided", incident_id=incident_id, step=step, decision=outcome, by=by, via=via
            )
        return result
