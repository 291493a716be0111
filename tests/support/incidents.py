"""Builders of IncidentView / NoteRequest for notifier tests (no core needed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from feedguard.responder.plugins import ActionRecord, AlertView, IncidentView, NoteKind, NoteRequest

# 2026-11-26 01:00:00 UTC
T0 = 1_795_654_800.0
HOUR = 3600.0


def alert(
    name: str,
    *,
    provider: str = "EIA",
    dataset: str | None = None,
    starts_at: float = T0,
    ends_at: float | None = None,
    summary: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> AlertView:
    all_labels = {"alertname": name, "provider": provider, "severity": "page"}
    if dataset:
        all_labels["dataset"] = dataset
    all_labels.update(labels or {})
    all_annotations = {"summary": summary} if summary else {}
    all_annotations.update(annotations or {})
    return AlertView(
        fingerprint=f"fp-{name}-{dataset or ''}",
        alertname=name,
        status="resolved" if ends_at is not None else "firing",
        labels=all_labels,
        annotations=all_annotations,
        starts_at=starts_at,
        ends_at=ends_at,
    )


def action(
    name: str,
    target: str,
    at: float,
    *,
    result: str = "success",
    phase: str = "firing",
    error: str | None = None,
    detail: Mapping[str, Any] | None = None,
    reverts: str | None = None,
) -> ActionRecord:
    return ActionRecord(
        reverts=reverts,
        action=name,
        target=target,
        resource=None,
        phase=phase,  # type: ignore[arg-type]
        result=result,  # type: ignore[arg-type]
        at=at,
        error=error,
        detail=dict(detail or {}),
    )


def incident(
    *,
    provider: str = "EIA",
    state: str = "open",
    alerts: Sequence[AlertView] = (),
    actions: Sequence[ActionRecord] = (),
    notes: Mapping[str, Any] | None = None,
    opened_at: float = T0,
    resolved_at: float | None = None,
    recovered_at: float | None = None,
    last_success_before: float | None = T0 - 1200,
    id: str = "inc-0001",
) -> IncidentView:
    return IncidentView(
        id=id,
        provider=provider,
        state=state,
        opened_at=opened_at,
        resolved_at=resolved_at,
        recovered_at=recovered_at,
        last_success_before=last_success_before,
        alerts=tuple(alerts),
        actions=tuple(actions),
        timeline=(),
        notes=dict(notes or {}),
    )


def request(
    kind: NoteKind,
    view: IncidentView,
    now: float,
    *,
    slot: int = 0,
    interval: float = HOUR,
) -> NoteRequest:
    return NoteRequest(
        kind=kind,
        slot=slot,
        incident=view,
        now=now,
        next_update_at=None if kind == "resolution" else now + interval,
    )


def with_notes(view: IncidentView, kept: Mapping[str, Any]) -> IncidentView:
    """What the core does with a notifier's answer: merge it into incident.notes."""
    return dataclasses.replace(view, notes={**view.notes, **kept})
