"""Runbook 3.3 and 5.5: switch the API's cached responses on, and back off.

``POST $AURUM_API/runtime-config/v1/features/external_read_cache`` with
``{"enabled": true, "configuration": {"ttl_seconds": 900}}``; recovery posts
exactly the state read before, ``enabled`` and ``configuration`` (an empty
configuration is posted back as ``{}``); ``{"enabled": false}`` when the API
does not answer a GET for the feature, which is what the runbook's 5.5 posts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .params import check_params, positive_int
from .runtime_config import NOT_SERVED, RuntimeConfigClient, retryable
from .settings import RuntimeConfigSettings


class ReadCache:
    name: ClassVar[str] = "read_cache"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "runtime-config"

    def __init__(self, client: RuntimeConfigClient, settings: RuntimeConfigSettings) -> None:
        self._client = client
        self._settings = settings

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        check_params(self.name, ctx.params, ("ttl_seconds",))
        ttl = positive_int(self.name, ctx.params, "ttl_seconds", self._settings.ttl_seconds)
        feature = self._settings.feature
        return [
            Target(
                description=f"switch on feature {feature} (ttl {ttl}s)",
                resource=f"runtime-config:feature:{feature}",
                params={"feature": feature, "ttl_seconds": ttl},
            )
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        feature = str(target.params["feature"])
        wanted = _wanted(target)
        current = await self._current(feature)
        detail: dict[str, JSON] = {"feature": feature, "state": wanted}
        intent = ctx.intents.get(target)
        if current is not None and _same(current, wanted):
            if intent is not None:
                # An earlier attempt (maybe another replica's, before a crash) switched
                # it on: the state from before is the one recorded then, not "on".
                detail["note"] = "switched on by an earlier attempt"
                return Outcome(previous=intent.previous, detail=detail, changed=False)
            detail["note"] = "already on with this configuration"
            return Outcome(previous=current, detail=detail, changed=False)
        previous = current if current is not None else {"enabled": False}
        await ctx.intents.record(target, previous, wanted)  # before the POST
        await self._client.set(feature, wanted)
        if current is None:
            detail["note"] = "previous state unknown (GET not served); assumed off"
        return Outcome(previous=previous, detail=detail, changed=True)

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        feature = str(target.params["feature"])
        restore = _restorable(previous)
        current = await self._current(feature)
        detail: dict[str, JSON] = {"feature": feature, "state": restore}
        if current is not None and _exactly(current, restore):
            detail["note"] = "already in the state to restore"
            return Outcome(previous=current, detail=detail, changed=False)
        if current is not None and not _same(current, _wanted(target)):
            # Neither what this responder set nor what was there before: an
            # operator's newer choice, kept.
            detail["state"] = current
            return Outcome(
                previous=current,
                detail=detail,
                changed=False,
                left_alone=f"feature {feature} was changed by someone else since; kept",
            )
        await self._client.set(feature, restore)
        return Outcome(previous=current, detail=detail, changed=True)

    async def _current(self, feature: str) -> dict[str, JSON] | None:
        status, body = await self._client.get(feature)
        if status in NOT_SERVED:  # the runbook only ever POSTs
            return None
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            raise ActionError(
                f"runtime-config: GET feature {feature}: HTTP {status}: "
                f"unexpected answer {str(body)[:200]}",
                retryable=retryable(status),
                status=status,
            )
        # The configuration is kept even when empty: restoring it exactly means
        # posting it back, or the API keeps the ttl this responder set.
        configuration = body.get("configuration")
        return {
            "enabled": body["enabled"],
            "configuration": configuration if isinstance(configuration, dict) else {},
        }


def _wanted(target: Target) -> dict[str, JSON]:
    """The state ``apply`` posts, and ``revert`` takes as this responder's own."""
    return {"enabled": True, "configuration": {"ttl_seconds": target.params["ttl_seconds"]}}


def _same(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    if current.get("enabled") != wanted.get("enabled"):
        return False
    # Only the settings we would write matter; an extra key the API adds does not.
    have = current.get("configuration") or {}
    return all(have.get(k) == v for k, v in (wanted.get("configuration") or {}).items())


def _exactly(current: Mapping[str, Any], restore: Mapping[str, Any]) -> bool:
    """Whether ``current`` is the state to restore; without a recorded
    configuration (the state was never read) only ``enabled`` is known."""
    if "configuration" not in restore:
        return current.get("enabled") == restore.get("enabled")
    return current.get("enabled") == restore.get("enabled") and (
        current.get("configuration") or {}
    ) == (restore.get("configuration") or {})


def _restorable(previous: JSON) -> dict[str, JSON]:
    if previous is None:
        return {"enabled": False}
    if not isinstance(previous, dict) or not isinstance(previous.get("enabled"), bool):
        raise ActionError(
            f"read_cache: cannot restore: recorded state {previous!r} is not a feature state",
            retryable=False,
        )
    return dict(previous)
