"""Runbook 4's workaround: reduce the ingestion batch size through runtime-config.

``external_ingest.batch_size=500``: the value ``batch_size`` in the configuration
of the feature ``external_ingest`` (``GET/POST {base}/runtime-config/v1/features/
external_ingest``, the API read_cache uses).  Apply reads the feature first and
records the value it replaces (or that there was none); recovery restores exactly
that, keeping every other key as it is then, and leaves alone a value someone
changed since.  A feature the API cannot read is refused: without the old value
there is nothing exact to restore.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .params import check_params, positive_int
from .runtime_config import RuntimeConfigClient, retryable
from .settings import RuntimeConfigSettings

_ABSENT: dict[str, JSON] = {"present": False}


class ReduceBatchSize:
    name: ClassVar[str] = "reduce_batch_size"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "runtime-config"

    def __init__(self, client: RuntimeConfigClient, settings: RuntimeConfigSettings) -> None:
        self._client = client
        self._settings = settings

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        check_params(self.name, ctx.params, ("batch_size",))
        size = positive_int(self.name, ctx.params, "batch_size", self._settings.batch_size)
        feature, key = self._settings.batch_size_feature, self._settings.batch_size_key
        return [
            Target(
                description=f"set {feature}.{key} to {size}",
                resource=f"runtime-config:value:{feature}.{key}",
                params={"feature": feature, "key": key, "batch_size": size},
            )
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        feature, key, size = _unpack(target)
        enabled, configuration = await self._read(feature)
        current = _value(configuration, key)
        detail: dict[str, JSON] = {"feature": feature, "key": key, "value": size}
        wanted = {"present": True, "value": size}
        intent = ctx.intents.get(target)
        if current == wanted:
            if intent is not None:
                # Set by an earlier attempt (maybe before a crash): the value recorded then.
                detail["note"] = "set by an earlier attempt"
                return Outcome(previous=intent.previous, detail=detail, changed=False)
            detail["note"] = f"{key} is already {size}"
            return Outcome(previous=current, detail=detail, changed=False)
        previous = current
        await ctx.intents.record(target, previous, wanted)  # before the POST
        await self._client.set(
            feature, {"enabled": enabled, "configuration": {**configuration, key: size}}
        )
        detail["replaced"] = previous
        return Outcome(previous=previous, detail=detail, changed=True)

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        feature, key, size = _unpack(target)
        restore = _restorable(previous)
        enabled, configuration = await self._read(feature)
        current = _value(configuration, key)
        detail: dict[str, JSON] = {"feature": feature, "key": key, "restore": restore}
        if current == restore:
            detail["note"] = "already the value to restore"
            return Outcome(previous=current, detail=detail, changed=False)
        if current != {"present": True, "value": size}:
            # Neither what this responder set nor what was there: an operator's choice.
            return Outcome(
                previous=current,
                detail=detail,
                changed=False,
                left_alone=f"{feature}.{key} was changed by someone else since; kept",
            )
        rest = {k: v for k, v in configuration.items() if k != key}
        if restore["present"]:
            rest[key] = restore["value"]
        await self._client.set(feature, {"enabled": enabled, "configuration": rest})
        return Outcome(previous=current, detail=detail, changed=True)

    async def _read(self, feature: str) -> tuple[bool, dict[str, JSON]]:
        status, body = await self._client.get(feature)
        if (
            status != 200
            or not isinstance(body, dict)
            or not isinstance(body.get("enabled"), bool)
            or not isinstance(body.get("configuration", {}), dict)
        ):
            raise ActionError(
                f"reduce_batch_size: GET feature {feature}: HTTP {status}: cannot read the "
                f"current value (nothing exact to restore), answer {str(body)[:200]}",
                retryable=retryable(status),
                status=status,
            )
        return body["enabled"], dict(body.get("configuration") or {})


def _unpack(target: Target) -> tuple[str, str, int]:
    return (
        str(target.params["feature"]),
        str(target.params["key"]),
        int(target.params["batch_size"]),
    )


def _value(configuration: dict[str, Any], key: str) -> dict[str, JSON]:
    if key not in configuration:
        return dict(_ABSENT)
    return {"present": True, "value": configuration[key]}


def _restorable(previous: JSON) -> dict[str, JSON]:
    if not isinstance(previous, dict) or not isinstance(previous.get("present"), bool):
        raise ActionError(
            f"reduce_batch_size: cannot restore: recorded value {previous!r} is not one",
            retryable=False,
        )
    if previous["present"] and "value" not in previous:
        raise ActionError(
            f"reduce_batch_size: cannot restore: recorded value {previous!r} has no value",
            retryable=False,
        )
    return dict(previous)
