"""The plan a webhook payload would cause, without executing anything (``simulate``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import incidents as inc
from .config import ResponderConfig
from .payload import Notification
from .plugins import Action, StepContext
from .routing import check_provider
from .steps import action_params


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
        doc["alerts"][alert.fingerprint] = {
            "fingerprint": alert.fingerprint,
            "alertname": alert.alertname,
            "status": alert.status,
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "starts_at": alert.starts_at,
            "ends_at": alert.ends_at,
        }
        view = inc.view(doc)
        steps = []
        phase_steps = playbook.firing if alert.status == "firing" else playbook.resolved
        for step in phase_steps:
            if step.revert is not None:
                steps.append({"revert": step.revert})
                continue
            assert step.action is not None
            params = action_params(config, step.action, step.params)
            item: dict[str, Any] = {"action": step.action, "params": params}
            action = actions.get(step.action)
            if action is None:
                item["error"] = f"unknown action {step.action!r}"
            else:
                ctx = StepContext(
                    incident=view, provider=provider, params=params, now=now, dry_run=True
                )
                try:
                    item["targets"] = [
                        {"description": t.description, "resource": t.resource}
                        for t in action.targets(ctx)
                    ]
                except Exception as exc:
                    item["error"] = f"targets(): {exc}"
                item["reversible"] = action.reversible
            steps.append(item)
        entry["phase"] = "firing" if alert.status == "firing" else "recovery"
        entry["steps"] = steps
        result.append(entry)
    return result
