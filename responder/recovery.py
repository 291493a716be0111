"""The recovery gate: once every alert of an incident resolved, probe the provider's
health endpoint until ``recovery.probes_required`` successes in a row, then plan the
playbooks' resolved steps and free the provider for a new incident.

The counting is ``probe_streak.recovery_probe``; this module does the probing and
the store writes.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from feedguard.core.log import get_logger
from feedguard.core.probes import probe

from .alertmanager_api import AlertmanagerUnavailable, firing_count
from .common import Common, Part
from .probe_streak import ProbeResult, recovery_probe
from .transitions import truncation_checked

Doc = dict[str, Any]
log = get_logger(__name__)


class RecoveryGate(Part):
    def __init__(self, common: Common, http: aiohttp.ClientSession | None) -> None:
        super().__init__(common)
        self.http = http
        self._playbooks = {p.name: p for p in self.config.playbooks}

    async def check(self, doc: Doc) -> bool:
        """Probe if due; True when the resolved steps were enqueued."""
        recovery = doc.get("recovery") or {}
        if recovery.get("steps_enqueued"):
            return False
        if not await self._picture_complete(doc):
            return False
        provider = self.config.providers.get(doc["provider"])
        settings = self.config.recovery
        result: ProbeResult | None = None
        if provider is not None and provider.health_probe is not None:
            if self.clock() < recovery.get("next_probe_at", 0):
                return False
            if self.http is None:
                return False
            outcome = await probe(self.http, provider.health_probe, user_agent=settings.user_agent)
            self.metrics.probes.labels(
                provider.name, "success" if outcome.success else "failure"
            ).inc()
            result = ProbeResult(outcome.success, outcome.error or "", outcome.status_code)

        def change(current: Doc | None) -> tuple[Doc | None, bool]:
            if current is None:
                return None, False
            enqueued = recovery_probe(
                current,
                result,
                self.clock(),
                playbooks=self._playbooks,
                probes_required=settings.probes_required,
                probe_interval=settings.probe_interval_seconds,
            )
            return (None, False) if enqueued is None else (current, enqueued)

        enqueued: bool = await self.store.update("incident", doc["id"], change)
        if enqueued:
            incident_id = doc["id"]

            def clear(active: Doc | None) -> tuple[Doc | None, None]:
                if active is None or active.get("incident") != incident_id:
                    return None, None
                return {"incident": None, "live": False}, None

            await self.store.update("active", doc["provider"], clear)
        return enqueued

    async def _picture_complete(self, doc: Doc) -> bool:
        """For a group Alertmanager truncated: True once Alertmanager says none of its
        alerts fires any more; meanwhile (or while it cannot be asked) recovery waits."""
        truncation = doc.get("truncation")
        if truncation is None or truncation.get("completed_at") is not None:
            return True
        labels = truncation["group_labels"]
        shown = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        settings = self.config.alertmanager
        firing: int | None = None
        if settings.url is None:
            why = "cannot ask Alertmanager which alerts still fire: alertmanager.url is not set"
        elif self.http is None:
            why = "cannot ask Alertmanager: no HTTP client"
        else:
            try:
                firing = await firing_count(
                    self.http, settings.url, labels, settings.timeout_seconds
                )
            except AlertmanagerUnavailable as exc:
                why = f"cannot ask Alertmanager which alerts still fire ({exc})"
            else:
                why = f"Alertmanager has {firing} alerts firing for {{{shown}}}"
        if firing is None:
            log.warning("truncated group: recovery waits", incident_id=doc["id"], reason=why)

        def change(current: Doc | None) -> tuple[Doc | None, bool]:
            if current is None:
                return None, False
            before = dict(current.get("truncation") or {})
            ok = truncation_checked(current, self.clock(), firing, why)
            return (current if current.get("truncation") != before else None), ok

        complete: bool = await self.store.update("incident", doc["id"], change)
        return complete
