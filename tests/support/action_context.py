"""Build the StepContext an action sees, without a responder core (action-level tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from feedguard.core.catalog import Provider
from feedguard.responder.plugins import IncidentView, StepContext

T0 = 1_764_115_200.0  # 2025-11-26T00:00:00Z


def provider(name: str = "ISO-NE", **fields: Any) -> Provider:
    values: dict[str, Any] = {
        "datasets": ("lmp_realtime_5min",),
        "fallback_mirror": name in ("ISO-NE", "NOAA"),
        "dags": ("external_data_ingest", "external_backfill"),
    }
    values.update(fields)
    return Provider(name=name, **values)


def context(
    prov: Provider | None = None,
    *,
    incident_id: str = "inc-1",
    params: Mapping[str, Any] | None = None,
    now: float = T0 + 600,
    opened_at: float = T0,
    last_success_before: float | None = None,
    recovered_at: float | None = None,
    dry_run: bool = False,
) -> StepContext:
    prov = prov or provider()
    incident = IncidentView(
        id=incident_id,
        provider=prov.name,
        state="stabilising",
        opened_at=opened_at,
        resolved_at=None,
        recovered_at=recovered_at,
        last_success_before=last_success_before,
        alerts=(),
        actions=(),
        timeline=(),
        notes={},
    )
    return StepContext(
        incident=incident, provider=prov, params=dict(params or {}), now=now, dry_run=dry_run
    )
