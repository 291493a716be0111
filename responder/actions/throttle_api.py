"""Runbook 3.1: throttle the API by merge-patching its rate limit in a ConfigMap.

``kubectl patch configmap/aurum-api-config -n aurum-dev --type merge
-p '{"data":{"AURUM_API_RATE_LIMIT_RPS":"50"}}'``, undone on recovery by
patching the replaced value back (``null`` when the key was absent).

The patch also writes an annotation holding the replaced value.  It is what
makes ``apply`` idempotent across a crash: a second ``apply`` that finds the
throttled value *and* feedguard's annotation reports the value from before
feedguard, not its own "50"; without the annotation the value was set by an
operator and is what recovery restores.  Every patch carries the
resourceVersion just read, so a concurrent edit is a 409 (retried) rather
than a lost update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .kube import ConfigMapClient, ConfigMapState
from .params import check_params
from .settings import KubernetesSettings

ANNOTATION_PREFIX = "feedguard.io/"


def annotation_for(key: str) -> str:
    """The annotation remembering the value replaced under ``key`` (name part <= 63 chars)."""
    name = f"replaced-{key}"
    if len(name) > 63:
        name = "replaced-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return ANNOTATION_PREFIX + name


class ThrottleApi:
    name: ClassVar[str] = "throttle_api"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "kubernetes"

    def __init__(self, client: ConfigMapClient, settings: KubernetesSettings) -> None:
        self._client = client
        self._settings = settings

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        check_params(self.name, ctx.params, ("value",))
        value = ctx.params.get("value", self._settings.value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ActionError(
                f"throttle_api: parameter value must be a string, got {value!r}", retryable=False
            )
        s = self._settings
        return [
            Target(
                description=(f"set {s.key}={value} in configmap {s.namespace}/{s.configmap}"),
                resource=f"k8s:configmap:{s.namespace}/{s.configmap}:{s.key}",
                params={
                    "namespace": s.namespace,
                    "configmap": s.configmap,
                    "key": s.key,
                    "value": str(value),
                },
            )
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        namespace, name, key, wanted = _where(target)
        marker = annotation_for(key)
        state = await self._client.read(namespace, name)
        current = state.data.get(key)
        detail: dict[str, JSON] = {
            "configmap": f"{namespace}/{name}",
            "key": key,
            "value": wanted,
        }
        if current == wanted:
            remembered = _remembered(state, marker)
            if remembered is not None:
                # Our own earlier patch (a crash came before the record): keep
                # the value from before feedguard, not the throttled one.
                previous = remembered[0]
                detail["note"] = "already throttled by feedguard; replaced value from annotation"
            else:
                previous = current
                detail["note"] = "already at the throttled value (set by someone else)"
            detail["resource_version"] = state.resource_version
            return Outcome(previous=previous, detail=detail, changed=False)
        body: dict[str, Any] = {
            "metadata": {
                "resourceVersion": state.resource_version,
                "annotations": {
                    marker: json.dumps({"previous": current, "incident": ctx.incident.id})
                },
            },
            "data": {key: wanted},
        }
        after = await self._client.merge_patch(namespace, name, body)
        detail["resource_version"] = after.resource_version
        return Outcome(previous=current, detail=detail, changed=True)

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        namespace, name, key, wanted = _where(target)
        if previous is not None and not isinstance(previous, str):
            raise ActionError(
                f"throttle_api: cannot restore {key}: recorded value {previous!r} is not a string",
                retryable=False,
            )
        marker = annotation_for(key)
        state = await self._client.read(namespace, name)
        current = state.data.get(key)
        detail: dict[str, JSON] = {
            "configmap": f"{namespace}/{name}",
            "key": key,
            "value": previous,
        }
        has_marker = marker in state.annotations
        if current == previous and not has_marker:
            detail["note"] = "already at the value to restore"
            return Outcome(previous=current, detail=detail, changed=False)
        body: dict[str, Any] = {
            "metadata": {"resourceVersion": state.resource_version, "annotations": {marker: None}}
        }
        left_alone = None
        if current == wanted:
            body["data"] = {key: previous}  # None deletes a key that was absent before
        elif current != previous:
            # Someone changed the limit after feedguard throttled it: their
            # value is newer than ours, so only our annotation goes.
            left_alone = f"{key}={current!r} was changed by someone else since; kept"
            detail["value"] = current
        after = await self._client.merge_patch(namespace, name, body)
        detail["resource_version"] = after.resource_version
        return Outcome(
            previous=current,
            detail=detail,
            changed=current != after.data.get(key),
            left_alone=left_alone,
        )


def _where(target: Target) -> tuple[str, str, str, str]:
    p: Mapping[str, JSON] = target.params
    return str(p["namespace"]), str(p["configmap"]), str(p["key"]), str(p["value"])


def _remembered(state: ConfigMapState, marker: str) -> tuple[str | None] | None:
    raw = state.annotations.get(marker)
    if raw is None:
        return None
    try:
        value = json.loads(raw)["previous"]
    except (ValueError, KeyError, TypeError):
        return None
    if value is not None and not isinstance(value, str):
        return None
    return (value,)
