"""Runs one playbook step (a work item) of one incident, target by target.

Owns retries, timeouts, circuit breakers, dry run and the cross-incident
reference counting of resources described in ``plugins.py``.  Every result is
written to the ledger as soon as it is known, so a restart resumes after the
last recorded target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from feedguard.core.catalog import Provider
from feedguard.core.log import get_logger

from . import flags
from . import incidents as inc
from .circuit import Breakers, CircuitOpen
from .config import ResponderConfig
from .metrics import Metrics
from .plugins import Action, ActionError, Outcome, StepContext, Target
from .store import Store

log = get_logger(__name__)

Doc = dict[str, Any]
FINAL = ("success", "dry_run", "skipped")


class LeaseLost(Exception):
    """Another replica took over this incident; stop without recording more."""


class Executor:
    def __init__(
        self,
        config: ResponderConfig,
        store: Store,
        actions: Mapping[str, Action],
        breakers: Breakers,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.actions = actions
        self.breakers = breakers
        self.metrics = metrics
        self.clock = clock

    # --- calling an action ------------------------------------------------------

    async def call(
        self, action: Action, fn: Callable[[], Awaitable[Outcome]]
    ) -> tuple[Outcome | None, str | None, int]:
        """(outcome, error, attempts made) with timeout, retries, backoff, breaker."""
        settings = self.config.executor
        error = "not attempted"
        for attempt in range(1, settings.attempts + 1):
            try:
                self.breakers.before_call(action.circuit)
            except CircuitOpen as exc:
                return None, str(exc), attempt - 1
            try:
                async with asyncio.timeout(settings.timeout_seconds):
                    outcome = await fn()
            except ActionError as exc:
                error = f"{exc}" + (f" (HTTP {exc.status})" if exc.status else "")
                if not exc.retryable:
                    # The system answered: a refusal says nothing about its health.
                    self.breakers.success(action.circuit)
                    return None, error, attempt
                self.breakers.failure(action.circuit)
            except TimeoutError:
                error = f"timed out after {settings.timeout_seconds:g}s"
                self.breakers.failure(action.circuit)
            except Exception as exc:  # an action's bug or client error is a failed attempt
                error = f"{type(exc).__name__}: {exc}"
                self.breakers.failure(action.circuit)
            else:
                self.breakers.success(action.circuit)
                return outcome, None, attempt
            if attempt < settings.attempts:
                delay = settings.backoff_initial_seconds * settings.backoff_factor ** (attempt - 1)
                log.warning(
                    "action attempt failed", action=action.name, attempt=attempt, error=error
                )
                await asyncio.sleep(delay)
        return None, error, settings.attempts

    # --- recording --------------------------------------------------------------

    async def record(self, incident_id: str, item: Doc, record: Doc, event: str) -> None:
        def change(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is None:
                return None, None
            for index, existing in enumerate(doc["actions"]):
                if existing.get("work") == item["id"] and existing["target"] == record["target"]:
                    if existing["result"] in FINAL:
                        return None, None  # already recorded by an earlier run
                    doc["actions"][index] = record  # a retried failure: the new result wins
                    break
            else:
                doc["actions"].append(record)
            if item["phase"] == "recovery" and record.get("reverts") is not None:
                for original in doc["actions"]:
                    if original.get("key") == record["reverts"]:
                        original["reverted"] = True
            inc.add_event(
                doc,
                record["at"],
                event,
                action=record["action"],
                target=record["target"],
                result=record["result"],
                **({"error": record["error"]} if record.get("error") else {}),
            )
            return doc, None

        await self.store.update("incident", incident_id, change)
        self.metrics.actions.labels(record["action"], record["result"]).inc()

    def _record(
        self,
        item: Doc,
        action: str,
        target: Target,
        result: str,
        *,
        previous: Any = None,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
        reversible: bool = False,
        reverts: str | None = None,
    ) -> Doc:
        return {
            "key": f"{item['id']}|{target.description}",
            "work": item["id"],
            "action": action,
            "target": target.description,
            "resource": target.resource,
            "target_params": dict(target.params),
            "step_params": item["params"],
            "phase": "firing" if item["phase"] == "firing" else "recovery",
            "result": result,
            "at": self.clock(),
            "previous": previous,
            "detail": dict(detail or {}),
            "error": error,
            "reversible": reversible,
            "reverted": False,
            "reverts": reverts,
        }

    def context(
        self, doc: Doc, provider: Provider, params: Mapping[str, Any], dry: bool
    ) -> StepContext:
        return StepContext(
            incident=inc.view(doc),
            provider=provider,
            params=params,
            now=self.clock(),
            dry_run=dry,
        )

    def params(self, action: str, step_params: Mapping[str, Any]) -> dict[str, Any]:
        options = self.config.action_options.get(action)
        return {**(dict(options.params) if options else {}), **step_params}

    # --- one work item ----------------------------------------------------------

    async def run_item(
        self, doc: Doc, item: Doc, provider: Provider, renew: Callable[[], Awaitable[None]]
    ) -> bool:
        """Run one step; True when every target ended well (success, dry run, skipped)."""
        if item.get("action"):
            return await self._run_action(doc, item, provider, renew)
        return await self._run_revert(doc, item, provider, renew)

    async def _run_action(
        self, doc: Doc, item: Doc, provider: Provider, renew: Callable[[], Awaitable[None]]
    ) -> bool:
        name = item["action"]
        incident_id = doc["id"]
        action = self.actions.get(name)
        if action is None:
            return await self._step_failed(
                doc, item, name, "unknown action", f"unknown action {name!r}"
            )
        modes = await flags.modes(self.config, self.store, name)
        params = self.params(name, item["params"])
        ctx = self.context(doc, provider, params, modes.dry_run)
        try:
            targets = list(action.targets(ctx))
        except Exception as exc:
            return await self._step_failed(doc, item, name, "planning", f"targets(): {exc}")
        done = {
            r["target"]
            for r in doc["actions"]
            if r.get("work") == item["id"] and r["result"] in FINAL
        }
        ok = True
        for target in targets:
            if target.description in done:
                continue  # recorded before a restart
            if not modes.enabled:
                record = self._record(
                    item, name, target, "skipped", detail={"why": f"action.{name} switched off"}
                )
                await self.record(incident_id, item, record, "step skipped")
                continue
            if modes.dry_run:
                record = self._record(
                    item,
                    name,
                    target,
                    "dry_run",
                    detail={"why": modes.why},
                    reversible=action.reversible,
                )
                await self.record(incident_id, item, record, "step planned (dry run)")
                continue
            ok = await self._apply(doc, item, action, ctx, target) and ok
            await renew()
        return ok

    async def _step_failed(self, doc: Doc, item: Doc, name: str, stage: str, error: str) -> bool:
        """Record a step that failed before any target (``stage`` names where); False."""
        target = Target(description=f"{name} ({stage})", resource=None)
        record = self._record(item, name, target, "failure", error=error)
        await self.record(doc["id"], item, record, "step failed")
        return False

    async def _apply(
        self, doc: Doc, item: Doc, action: Action, ctx: StepContext, target: Target
    ) -> bool:
        incident_id = doc["id"]
        name = action.name
        reversible = action.reversible
        if target.resource is not None:
            first, applied, original, holders = await self.store.update(
                "resource", target.resource, _claim(target.resource, incident_id)
            )
            if not first or applied:
                holder = holders[0] if holders else incident_id
                why = (
                    f"already held by incident {holder}"
                    if holder != incident_id
                    else "already applied (original value kept)"
                )
                record = self._record(
                    item,
                    name,
                    target,
                    "success",
                    previous=original,
                    detail={"changed": False, "already_held_by": holder, "why": why},
                    reversible=reversible,
                )
                await self.record(incident_id, item, record, "step joined existing change")
                return True
        outcome, error, attempts = await self.call(action, lambda: action.apply(ctx, target))
        if outcome is None:
            if target.resource is not None:
                await self.store.update("resource", target.resource, _drop_claim(incident_id))
            record = self._record(
                item,
                name,
                target,
                "failure",
                error=error,
                detail={"attempts": attempts},
                reversible=reversible,
            )
            await self.record(incident_id, item, record, "step failed")
            return False
        if target.resource is not None:
            await self.store.update(
                "resource", target.resource, _applied(incident_id, outcome.previous)
            )
        record = self._record(
            item,
            name,
            target,
            "success",
            previous=outcome.previous,
            detail={**outcome.detail, "changed": outcome.changed, "attempts": attempts},
            reversible=reversible,
        )
        await self.record(incident_id, item, record, "step applied")
        return True

    async def _run_revert(
        self, doc: Doc, item: Doc, provider: Provider, renew: Callable[[], Awaitable[None]]
    ) -> bool:
        which = item["revert"]
        incident_id = doc["id"]
        done = {
            r.get("reverts")
            for r in doc["actions"]
            if r.get("work") == item["id"] and r["result"] in FINAL
        }
        candidates = [
            r
            for r in doc["actions"]
            if r["phase"] == "firing"
            and r["result"] in ("success", "dry_run")
            and r.get("reversible")
            and not r.get("reverted")
            and (which == "all" or r["action"] == which)
            and r["key"] not in done
        ]
        ok = True
        for original in reversed(candidates):
            name = original["action"]
            target = Target(
                description=original["target"],
                resource=original["resource"],
                params=original.get("target_params") or {},
            )
            action = self.actions.get(name)
            modes = await flags.modes(self.config, self.store, name)
            if original["result"] == "dry_run" or modes.dry_run:
                record = self._record(
                    item,
                    name,
                    target,
                    "dry_run",
                    detail={"why": modes.why},
                    reverts=original["key"],
                )
                await self.record(incident_id, item, record, "revert planned (dry run)")
                continue
            if action is None:
                record = self._record(
                    item,
                    name,
                    target,
                    "failure",
                    error=f"unknown action {name!r}",
                    reverts=original["key"],
                )
                await self.record(incident_id, item, record, "revert failed")
                ok = False
                continue
            previous = original.get("previous")
            if target.resource is not None:
                last, applied, stored_original, holders = await self.store.update(
                    "resource", target.resource, _release(incident_id)
                )
                if not last:
                    record = self._record(
                        item,
                        name,
                        target,
                        "skipped",
                        detail={
                            "why": f"still held by {', '.join(holders)}",
                            "still_held_by": holders,
                        },
                        reverts=original["key"],
                    )
                    await self.record(incident_id, item, record, "revert deferred to last holder")
                    continue
                if not applied:
                    record = self._record(
                        item,
                        name,
                        target,
                        "skipped",
                        detail={"why": "nothing applied to undo"},
                        reverts=original["key"],
                    )
                    await self.record(incident_id, item, record, "revert skipped")
                    continue
                previous = stored_original
            ctx = self.context(
                doc, provider, self.params(name, original.get("step_params") or {}), False
            )
            outcome, error, attempts = await self.call(
                action, _reverter(action, ctx, target, previous)
            )
            if outcome is None:
                record = self._record(
                    item,
                    name,
                    target,
                    "failure",
                    error=error,
                    previous=previous,
                    detail={"attempts": attempts},
                    reverts=original["key"],
                )
                await self.record(incident_id, item, record, "revert failed")
                ok = False
                continue
            if target.resource is not None:
                await self.store.update("resource", target.resource, _reverted)
            record = self._record(
                item,
                name,
                target,
                "success",
                previous=outcome.previous,
                detail={
                    **outcome.detail,
                    "restored": previous,
                    "changed": outcome.changed,
                    "attempts": attempts,
                },
                reverts=original["key"],
            )
            await self.record(incident_id, item, record, "step reverted")
            await renew()
        return ok


def _reverter(
    action: Action, ctx: StepContext, target: Target, previous: Any
) -> Callable[[], Awaitable[Outcome]]:
    return lambda: action.revert(ctx, target, previous)


# --- resource claims (pure updaters) ------------------------------------------------


def _fresh(resource: str) -> Doc:
    return {"resource": resource, "holders": [], "original": None, "applied": False, "live": True}


def _claim(
    resource: str, incident_id: str
) -> Callable[[Doc | None], tuple[Doc, tuple[bool, bool, Any, list[str]]]]:
    def change(doc: Doc | None) -> tuple[Doc, tuple[bool, bool, Any, list[str]]]:
        doc = doc or _fresh(resource)
        if incident_id not in doc["holders"]:
            doc["holders"].append(incident_id)
        doc["live"] = True
        first = doc["holders"][0] == incident_id
        # applied and first: this incident applied it before a restart, or an earlier
        # incident's revert failed; either way the recorded original is kept.
        return doc, (first, doc["applied"], doc["original"], list(doc["holders"]))

    return change


def _applied(incident_id: str, previous: Any) -> Callable[[Doc | None], tuple[Doc | None, None]]:
    def change(doc: Doc | None) -> tuple[Doc | None, None]:
        if doc is None:
            return None, None
        if not doc["applied"]:
            doc["applied"] = True
            doc["original"] = previous
            doc["applied_by"] = incident_id
        return doc, None

    return change


def _drop_claim(incident_id: str) -> Callable[[Doc | None], tuple[Doc | None, None]]:
    def change(doc: Doc | None) -> tuple[Doc | None, None]:
        if doc is None or incident_id not in doc["holders"]:
            return None, None
        doc["holders"].remove(incident_id)
        doc["live"] = bool(doc["holders"]) or doc["applied"]
        return doc, None

    return change


def _release(
    incident_id: str,
) -> Callable[[Doc | None], tuple[Doc | None, tuple[bool, bool, Any, list[str]]]]:
    def change(doc: Doc | None) -> tuple[Doc | None, tuple[bool, bool, Any, list[str]]]:
        if doc is None:
            return None, (True, False, None, [])
        if incident_id in doc["holders"]:
            doc["holders"].remove(incident_id)
        return doc, (not doc["holders"], doc["applied"], doc["original"], list(doc["holders"]))

    return change


def _reverted(doc: Doc | None) -> tuple[Doc | None, None]:
    if doc is None or doc["holders"]:
        return None, None  # claimed again meanwhile: that incident now owns the change
    doc.update(applied=False, original=None, applied_by=None, live=False)
    return doc, None
