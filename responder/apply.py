"""Running an ``{action: NAME}`` step: plan its targets, then apply each one that is
not yet recorded — skipped when the action is switched off, only planned in dry run,
joined when another incident already holds the resource."""

from __future__ import annotations

from functools import partial
from typing import Any

from feedguard.core.catalog import Provider

from . import resources
from .plugins import Action, StepContext, Target
from .records import done_targets
from .steps import Renew, StepKit

Doc = dict[str, Any]


async def apply_step(kit: StepKit, doc: Doc, item: Doc, provider: Provider, renew: Renew) -> bool:
    """True when every target ended well (success, dry run, skipped)."""
    name = item["action"]
    action = kit.actions.get(name)
    if action is None:
        return await _step_failed(
            kit, doc, item, name, "unknown action", f"unknown action {name!r}"
        )
    modes = await kit.modes(name)
    ctx = kit.context(doc, provider, kit.params(name, item["params"]), modes.dry_run)
    try:
        targets = list(action.targets(ctx))
    except Exception as exc:
        return await _step_failed(kit, doc, item, name, "planning", f"targets(): {exc}")
    done = done_targets(doc, item)
    ok = True
    for target in targets:
        if target.description in done:
            continue  # recorded before a restart
        record = partial(kit.record, doc, item, name, target)
        if not modes.enabled:
            await record("skipped", "step skipped", detail={"why": f"action.{name} switched off"})
            continue
        if modes.dry_run:
            why = {"why": modes.why}
            await record(
                "dry_run", "step planned (dry run)", detail=why, reversible=action.reversible
            )
            continue
        ok = await _apply_target(kit, doc, item, action, ctx, target) and ok
        await renew()
    return ok


async def _step_failed(
    kit: StepKit, doc: Doc, item: Doc, name: str, stage: str, error: str
) -> bool:
    """Record a step that failed before any target (``stage`` names where); False."""
    target = Target(description=f"{name} ({stage})", resource=None)
    await kit.record(doc, item, name, target, "failure", "step failed", error=error)
    return False


async def _apply_target(
    kit: StepKit, doc: Doc, item: Doc, action: Action, ctx: StepContext, target: Target
) -> bool:
    incident_id = doc["id"]
    record = partial(kit.record, doc, item, action.name, target, reversible=action.reversible)
    if target.resource is not None:
        first, applied, original, holders = await kit.store.update(
            "resource", target.resource, resources.claim(target.resource, incident_id)
        )
        if not first or applied:
            holder = holders[0] if holders else incident_id
            why = (
                f"already held by incident {holder}"
                if holder != incident_id
                else "already applied (original value kept)"
            )
            detail = {"changed": False, "already_held_by": holder, "why": why}
            await record("success", "step joined existing change", previous=original, detail=detail)
            return True
    outcome, error, attempts, transient = await kit.call(action, lambda: action.apply(ctx, target))
    if outcome is None:
        if target.resource is not None:
            await kit.store.update("resource", target.resource, resources.drop_claim(incident_id))
        detail = {"attempts": attempts, "transient": transient}
        await record("failure", "step failed", error=error, detail=detail)
        return False
    if target.resource is not None:
        await kit.store.update(
            "resource", target.resource, resources.applied(incident_id, outcome.previous)
        )
    detail = {**outcome.detail, "changed": outcome.changed, "attempts": attempts}
    await record("success", "step applied", previous=outcome.previous, detail=detail)
    return True
