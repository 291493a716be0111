"""The plan a webhook payload would cause, without executing anything (``simulate``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import incidents as inc
from . import verified_recovery as vr
from .config import ResponderConfig, Step
from .evidence.gather import would_read
from .notes.render import NoteRenderer
from .payload import Alert, Notification
from .plugins import Action, NoteRequest, StepContext, Target
from .routing import check_provider
from .steps import action_params
from .verify import verification_plan


def plan(
    config: ResponderConfig, notification: Notification, actions: Mapping[str, Action], now: float
) -> list[dict[str, Any]]:
    """One entry per alert: what the responder would do with it (firing steps only for
    firing alerts; resolved alerts start recovery, whose steps are listed too)."""
    result = []
    for alert in notification.alerts:
        entry: dict[str, Any] = {
            "alertname": alert.alertname,
            "fingerprint": alert.fingerprint,
            "status": alert.status,
            "provider": alert.labels.get("provider"),
        }
        _, problem = check_provider(config.providers, alert.labels)
        playbook = next((p for p in config.playbooks if p.matches(alert.labels)), None)
        if problem is None and playbook is None:
            problem = "no playbook matches the alert"
        if problem is not None:
            entry["ignored"] = problem
            result.append(entry)
            continue
        assert playbook is not None
        provider = config.providers.require(alert.labels["provider"])
        entry["playbook"] = playbook.name
        doc = inc.new_incident("simulated", provider.name, now, None)
        doc["alerts"][alert.fingerprint] = _alert_doc(alert)
        view = inc.view(doc)
        steps = []
        phase_steps = playbook.firing if alert.status == "firing" else playbook.resolved
        for step in phase_steps:
            gate = _approval(config, step)
            if step.revert is not None:
                steps.append({"revert": step.revert, **gate})
                continue
            assert step.action is not None
            params = action_params(config, step.action, step.params)
            item: dict[str, Any] = {"action": step.action, "params": params, **gate}
            action = actions.get(step.action)
            if action is None:
                item["error"] = f"unknown action {step.action!r}"
            else:
                ctx = StepContext(
                    incident=view, provider=provider, params=params, now=now, dry_run=True
                )
                try:
                    targets = list(action.targets(ctx))
                except Exception as exc:
                    item["error"] = f"targets(): {exc}"
                else:
                    item["targets"] = [
                        {"description": t.description, "resource": t.resource} for t in targets
                    ]
                    then = _verification_steps(config, provider.name, step.action, targets)
                    if then:
                        item["then"] = then
                item["reversible"] = action.reversible
            steps.append(item)
        entry["phase"] = "firing" if alert.status == "firing" else "recovery"
        entry["steps"] = steps
        if alert.status == "firing" and config.evidence.enabled:
            entry["evidence"] = would_read(config.evidence, provider)
        result.append(entry)
    return result


def _verification_steps(
    config: ResponderConfig, provider: str, action: str, targets: list[Target]
) -> list[str]:
    """After a backfill trigger: the follow-up steps verified recovery would take."""
    verify = verification_plan(config, provider)
    if verify is None or action != vr.BACKFILL_ACTION:
        return []
    steps = []
    for target in targets:
        dag_id = str(target.params.get("dag_id", ""))
        steps.extend(vr.describe(verify, dag_id, str(target.params.get("dag_run_id", ""))))
    return steps


def _alert_doc(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "alertname": alert.alertname,
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
    }


def _planned_records(entries: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """The plan's targets as the dry-run action records an incident would hold."""
    records = []
    for entry in entries:
        for step in entry.get("steps", []):
            for target in step.get("targets", []):
                records.append(
                    {
                        "action": step["action"],
                        "target": target["description"],
                        "resource": target["resource"],
                        "phase": entry["phase"],
                        "result": "dry_run",
                        "at": now,
                        "previous": None,
                        "detail": {"why": "simulate"},
                        "error": None,
                    }
                )
    return records


def rendered_notes(
    config: ResponderConfig,
    notification: Notification,
    entries: list[dict[str, Any]],
    now: float,
) -> list[dict[str, Any]]:
    """The Slack note each provider's incident would post for this payload, rendered with
    the configured templates: ``initial`` while an alert fires, else ``resolution``."""
    renderer = NoteRenderer(config.notes, config.providers)
    planned = {e["fingerprint"] for e in entries if "ignored" not in e}
    providers: dict[str, list[Alert]] = {}
    for alert in notification.alerts:
        if alert.fingerprint in planned:
            providers.setdefault(alert.labels["provider"], []).append(alert)
    notes = []
    for provider, alerts in providers.items():
        doc = inc.new_incident("simulated", provider, now, None)
        for alert in alerts:
            doc["alerts"][alert.fingerprint] = _alert_doc(alert)
        mine = [e for e in entries if e.get("provider") == provider and "ignored" not in e]
        doc["actions"] = _planned_records(mine, now)
        firing = any(a.status == "firing" for a in alerts)
        if not firing:
            doc.update(state=inc.RESOLVED, resolved_at=now, recovered_at=now)
        interval = config.notes.update_interval_seconds
        request = NoteRequest(
            kind="initial" if firing else "resolution",
            slot=0,
            incident=inc.view(doc),
            now=now,
            next_update_at=now + interval if firing else None,
        )
        text, _ = renderer.render(request)
        notes.append(
            {
                "provider": provider,
                "kind": request.kind,
                "channel": config.notes.channel,
                "lines": text.splitlines(),
            }
        )
    return notes


def _approval(config: ResponderConfig, step: Step) -> dict[str, Any]:
    """What a gated step would wait for (``{}`` for a step without the gate)."""
    if step.approval != "required":
        return {}
    settings = config.approvals
    return {
        "approval": {
            "required": True,
            "timeout_minutes": step.approval_timeout_minutes or settings.timeout_minutes,
            "on_timeout": step.approval_on_timeout or settings.on_timeout,
        }
    }
