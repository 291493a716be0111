"""What a note template sees: plain dicts and lists built from a NoteRequest.

Values are kept raw here (the template environment escapes every one of them on
output); times are epoch seconds, formatted in templates with ``|time`` and
``|duration``.  docs/notes.md lists every variable.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from feedguard.core.catalog import Provider

from ..plugins import ActionRecord, AlertView, IncidentView, NoteRequest
from ..verified_recovery import minutes

BACKFILL_ACTION = "trigger_backfill"

# Runbook section 7, owners included.  Kept as data so templates can lay it out;
# an operator changes it by overriding checklist.j2.
POST_INCIDENT_CHECKLIST: tuple[dict[str, str], ...] = (
    {
        "task": "Root-cause analysis & post-mortem (within 1 business day)",
        "owner": "Incident Lead",
        "notes": "Use template in docs/postmortems/external-outage.md",
    },
    {
        "task": "Monitoring review",
        "owner": "Platform",
        "notes": "Adjust thresholds or add probes if detection lag > 5 min",
    },
    {
        "task": "Data quality audit",
        "owner": "Data Engineering",
        "notes": "Confirm backfill completeness across mart_external_series_catalog, "
        "mart_series_curve_mapping",
    },
    {
        "task": "Runbook update",
        "owner": "Incident Lead",
        "notes": "Capture lessons learned",
    },
)


def _alert(alert: AlertView) -> dict[str, Any]:
    return {
        "name": alert.alertname,
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "summary": alert.annotations.get("summary", ""),
        "description": alert.annotations.get("description", ""),
        "severity": alert.labels.get("severity", ""),
        "dataset": alert.labels.get("dataset", ""),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "fingerprint": alert.fingerprint,
    }


# What the core adds to every step's detail; not news for a reader of the note.
BOOKKEEPING_DETAIL = frozenset({"changed", "attempts", "restored", "why", "still_held_by"})


def _action(record: ActionRecord) -> dict[str, Any]:
    return {
        "action": record.action,
        "target": record.target,
        # Every undo names the record it undoes, whatever its result.
        "undo": record.reverts is not None,
        # Why a step did not do its thing (skipped, left alone, deferred), if it says.
        "why": str(record.detail.get("why") or ""),
        "facts": {k: v for k, v in record.detail.items() if k not in BOOKKEEPING_DETAIL},
        "phase": record.phase,
        "result": record.result,
        "at": record.at,
        "error": record.error or "",
        "detail": dict(record.detail),
        "previous": record.previous,
    }


# The exporter's consumer probes (docs/lineage.md): its ``endpoint`` label names
# the consumer endpoint serving stale data, for "Scope the blast radius".
CONSUMER_STALE = "ExternalConsumerDataStale"


def stale_datasets(
    alerts: Sequence[AlertView], until_default: float, label: str = "dataset"
) -> list[dict[str, Any]]:
    """Datasets (or other ``label`` values) named by alerts, each with the span its alerts covered.

    The span runs from the earliest ``starts_at`` to the latest end; an alert
    still firing ends at ``until_default`` (now, or the resolution time).
    """
    spans: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        name = alert.labels.get(label)
        if not name:
            continue
        end = alert.ends_at if alert.status == "resolved" and alert.ends_at else None
        span = spans.setdefault(
            name,
            {label: name, "since": alert.starts_at, "until": end, "firing": False},
        )
        span["since"] = min(span["since"], alert.starts_at)
        if end is None:
            span["firing"] = True
        elif span["until"] is None or end > span["until"]:
            span["until"] = end
    result = []
    for span in spans.values():
        until = until_default if span["firing"] or span["until"] is None else span["until"]
        result.append({**span, "until": until, "duration": max(0.0, until - span["since"])})
    return sorted(result, key=lambda s: (s["since"], s[label]))


def _causes(alerts: Sequence[AlertView]) -> list[str]:
    """Distinct alert summaries (or descriptions), first alert first."""
    seen: list[str] = []
    for alert in sorted(alerts, key=lambda a: a.starts_at):
        text = alert.annotations.get("summary") or alert.annotations.get("description") or ""
        text = text.strip()
        if text and text not in seen:
            seen.append(text)
    return seen


def _backfill(actions: Sequence[ActionRecord], incident: IncidentView) -> dict[str, Any]:
    runs = [a for a in actions if a.action == BACKFILL_ACTION]
    if not runs:
        denied = _denied_backfill(incident)
        if denied is not None:
            return denied
        return {"status": "not_run", "records": []}
    latest = max(runs, key=lambda a: a.at)
    return {
        "status": latest.result,
        "records": [_action(a) for a in runs],
        "latest": _action(latest),
    }


def _denied_backfill(incident: IncidentView) -> dict[str, Any] | None:
    """The recovery's backfill step an approver or the approval timeout denied: who, and
    the window it was for (last success before the outage, else the open, to recovery)."""
    step = next(
        (
            s
            for s in incident.approvals
            if s.get("phase") == "recovery"
            and s.get("what") == BACKFILL_ACTION
            and s.get("status") == "denied"
        ),
        None,
    )
    if step is None:
        return None
    start = incident.last_success_before
    if start is None:
        start = incident.opened_at
    end = incident.recovered_at if incident.recovered_at is not None else incident.resolved_at
    decision = step.get("decision")
    return {
        "status": "denied",
        "records": [],
        "step": step.get("id"),
        "decision": dict(decision) if isinstance(decision, Mapping) else {},
        "window": {"start": start, "end": max(start, end) if end is not None else None},
    }


# Error lines quoted in a note (the incident's API and page have them all).
EVIDENCE_EXCERPT_LINES = 3
EVIDENCE_EXCERPT_CHARS = 160


def _evidence(snapshots: Sequence[Mapping[str, Any]], slot: int) -> dict[str, Any] | None:
    """This slot's evidence snapshot (else the newest) for the note: summary and excerpt."""
    if not snapshots:
        return None
    chosen = next((s for s in reversed(snapshots) if s.get("slot") == slot), snapshots[-1])
    lines = [line for w in chosen.get("workloads") or [] for line in w.get("error_lines") or []]
    lines.sort(key=lambda e: e.get("at") or 0.0)
    excerpt = [
        {**e, "line": str(e.get("line", ""))[:EVIDENCE_EXCERPT_CHARS]}
        for e in lines[-EVIDENCE_EXCERPT_LINES:]
    ]
    return {
        "slot": chosen.get("slot"),
        "gathered_at": chosen.get("gathered_at"),
        "dry_run": bool(chosen.get("dry_run")),
        "would_read": list(chosen.get("would_read") or []),
        "summary": list(chosen.get("summary") or []),
        "error": chosen.get("error"),
        "excerpt": excerpt,
        "error_lines_total": sum(
            int(w.get("error_lines_total") or 0) for w in chosen.get("workloads") or []
        ),
    }


def _alert_counts(incident: IncidentView) -> dict[str, int]:
    """Every alert counted; from the sample itself for a view made without counts."""
    if incident.alert_counts:
        return dict(incident.alert_counts)
    firing = sum(1 for a in incident.alerts if a.status == "firing")
    total = len(incident.alerts)
    return {"total": total, "firing": firing, "resolved": total - firing, "sampled": total}


def build_context(
    request: NoteRequest,
    provider: Provider | None,
    *,
    interval_seconds: float,
) -> dict[str, Any]:
    incident = request.incident
    alerts = sorted(incident.alerts, key=lambda a: (a.starts_at, a.alertname))
    end = incident.resolved_at if incident.resolved_at is not None else request.now
    providers = sorted(
        {incident.provider} | {a.labels["provider"] for a in alerts if a.labels.get("provider")}
    )
    actions = sorted(incident.actions, key=lambda a: a.at)
    since = _last_note_at(incident.notes) or incident.opened_at
    eta = next(
        (a.annotations["eta"] for a in alerts if a.annotations.get("eta")),
        None,
    )
    return {
        "kind": request.kind,
        "slot": request.slot,
        "now": request.now,
        "next_update_at": request.next_update_at,
        "update_interval_seconds": interval_seconds,
        "incident": {
            "id": incident.id,
            "provider": incident.provider,
            "state": incident.state,
            "opened_at": incident.opened_at,
            "resolved_at": incident.resolved_at,
            "recovered_at": incident.recovered_at,
            "last_success_before": incident.last_success_before,
            "lineage_failure": dict(incident.lineage_failure) if incident.lineage_failure else None,
            "duration": max(0.0, end - incident.opened_at),
        },
        "providers": providers,
        "provider": {
            "name": incident.provider,
            "description": provider.description if provider else "",
            "datasets": list(provider.datasets) if provider else [],
            "dags": list(provider.dags) if provider else [],
            "fallback_mirror": provider.fallback_mirror if provider else False,
        },
        "dashboards": [
            {"title": d.title, "url": d.url} for d in (provider.dashboards if provider else ())
        ],
        "alerts": [_alert(a) for a in alerts],
        "firing_alerts": [_alert(a) for a in alerts if a.status == "firing"],
        "resolved_alerts": [_alert(a) for a in alerts if a.status == "resolved"],
        "first_alert": _alert(alerts[0]) if alerts else None,
        "stale_datasets": stale_datasets(alerts, end),
        "stale_consumers": stale_datasets(
            [a for a in alerts if a.alertname == CONSUMER_STALE], end, label="endpoint"
        ),
        "causes": _causes(alerts),
        "actions": [_action(a) for a in actions],
        "mitigations": [_action(a) for a in actions if a.phase == "firing"],
        "recovery_actions": [_action(a) for a in actions if a.phase == "recovery"],
        "new_actions": [_action(a) for a in actions if a.at > since],
        "since_last_note": since,
        "backfill": _backfill(actions, incident),
        "eta": eta,
        "checklist": [dict(item) for item in POST_INCIDENT_CHECKLIST],
        "evidence": _evidence(incident.evidence, request.slot),
        "truncated_alerts": incident.truncated_alerts,
        "alert_counts": _alert_counts(incident),
        "detection": dict(incident.detection) if incident.detection else None,
        "verification": _verification(incident.verification),
        "incident_url": request.incident_url,
        "approvals": [dict(step) for step in incident.approvals],
        "awaiting_approval": [
            dict(step) for step in incident.approvals if step["status"] == "awaiting_approval"
        ],
    }


def _verification(verification: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The verified recovery as kept on the incident, with the run's duration as text."""
    if not verification:
        return None
    result = copy.deepcopy(dict(verification))
    run = result.get("backfill") or {}
    took = run.get("duration_seconds")
    run["took"] = minutes(took) if isinstance(took, int | float) else None
    return result


def _last_note_at(notes: Mapping[str, Any]) -> float | None:
    value = notes.get("last_note_at")
    return float(value) if isinstance(value, int | float) else None
