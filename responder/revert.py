"""Running a ``{revert: all|NAME}`` step: undo this incident's reversible firing
changes, newest first, restoring exactly the value each one replaced.  A resource
still held by another incident is left to its last holder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from feedguard.core.catalog import Provider

from . import resources
from .plugins import Action, Outcome, StepContext, Target
from .records import revert_candidates
from .steps import Renew, StepKit

Doc = dict[str, Any]


async def revert_step(kit: StepKit, doc: Doc, item: Doc, provider: Provider, renew: Renew) -> bool:
    """True when every undo ended well (success, dry run, skipped)."""
    ok = True
    for original in revert_candidates(doc, item):
        result = await _revert_one(kit, doc, item, provider, original)
        if result is None:
            continue  # only recorded: nothing was called
        ok = result and ok
        if result:
            await renew()
    return ok


async def _revert_one(
    kit: StepKit, doc: Doc, item: Doc, provider: Provider, original: Doc
) -> bool | None:
    """Undo one firing record: True/False when the action was called (and worked),
    None when the outcome was only recorded (dry run, deferred, nothing to undo)."""
    name = original["action"]
    target = Target(
        description=original["target"],
        resource=original["resource"],
        params=original.get("target_params") or {},
    )
    record = partial(kit.record, doc, item, name, target, reverts=original["key"])
    action = kit.actions.get(name)
    modes = await kit.modes(name)
    if original["result"] == "dry_run" or modes.dry_run:
        await record("dry_run", "revert planned (dry run)", detail={"why": modes.why})
        return None
    if action is None:
        await record("failure", "revert failed", error=f"unknown action {name!r}")
        return False
    previous = original.get("previous")
    if target.resource is not None:
        last, applied, stored_original, holders = await kit.store.update(
            "resource", target.resource, resources.release(doc["id"])
        )
        if not last:
            detail: dict[str, Any] = {
                "why": f"deferred: stays in place, still held by incident {', '.join(holders)}"
                " (undone when the last holder recovers)",
                "still_held_by": holders,
            }
            await record("skipped", "revert deferred to last holder", detail=detail)
            return None
        if not applied:
            await record("skipped", "revert skipped", detail={"why": "nothing applied to undo"})
            return None
        previous = stored_original
    params = kit.params(name, original.get("step_params") or {})
    ctx = kit.context(doc, provider, params, False)
    outcome, error, attempts, transient = await kit.call(
        action, _reverter(action, ctx, target, previous)
    )
    if outcome is None:
        detail = {"attempts": attempts, "transient": transient}
        await record("failure", "revert failed", error=error, previous=previous, detail=detail)
        return False
    if target.resource is not None:
        await kit.store.update("resource", target.resource, resources.reverted)
    detail = {**outcome.detail, "changed": outcome.changed, "attempts": attempts}
    if outcome.left_alone is not None:
        # Not an undo: the value that is there now was kept (``previous``).
        detail["why"] = f"left alone: {outcome.left_alone}"
        await record(
            "skipped", "revert left the value alone", previous=outcome.previous, detail=detail
        )
        return True
    # ``restored``: the value in place now, the one from before the incident.
    detail["restored"] = previous
    await record("success", "step reverted", previous=outcome.previous, detail=detail)
    return True


def _reverter(
    action: Action, ctx: StepContext, target: Target, previous: Any
) -> Callable[[], Awaitable[Outcome]]:
    return lambda: action.revert(ctx, target, previous)
