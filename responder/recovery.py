"""The recovery gate: once every alert of an incident resolved, probe the provider's
health endpoint until ``recovery.probes_required`` successes in a row, then plan the
playbooks' resolved steps and free the provider for a new incident.

The counting is ``transitions.recovery_probe``; this module does the probing and
the store writes.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from feedguard.core.probes import probe

from .common import Common, Part
from .transitions import ProbeResult, recovery_probe

Doc = dict[str, Any]


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
