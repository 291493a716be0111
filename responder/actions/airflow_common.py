"""What the Airflow actions share: error mapping and idempotent triggering."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import (
    AirflowAuthError,
    AirflowConflict,
    AirflowError,
    AirflowNotFound,
    AirflowUnavailable,
)

from ..plugins import JSON, ActionError, Outcome, StepContext, Target

_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_id(kind: str, provider: str, incident_id: str) -> str:
    """A DAG run id fixed by the incident, so a repeated trigger is a 409, not a second run."""
    return _RUN_ID_UNSAFE.sub("-", f"feedguard__{kind}__{provider}__{incident_id}")[:250]


def airflow_error(exc: AirflowError, what: str) -> ActionError:
    """An ActionError naming the DAG and the status; retryable only when Airflow may recover."""
    if isinstance(exc, AirflowNotFound):
        return ActionError(
            f"{what}: not found (HTTP 404: {exc.detail})", retryable=False, status=404
        )
    if isinstance(exc, AirflowAuthError):
        # The client already fetched a new token once; another try would not help.
        status = f"HTTP {exc.status}" if exc.status else "no request made"
        return ActionError(
            f"{what}: Airflow refused the credentials ({status}: {exc.detail})",
            retryable=False,
            status=exc.status or None,
        )
    if isinstance(exc, AirflowUnavailable):
        status = f"HTTP {exc.status}" if exc.status else "no answer"
        return ActionError(
            f"{what}: Airflow unavailable ({status}: {exc.detail})",
            retryable=True,
            status=exc.status or None,
            retry_after=exc.retry_after,
        )
    return ActionError(
        f"{what}: HTTP {exc.status}: {exc.detail}",
        retryable=exc.status == 429,
        status=exc.status or None,
        retry_after=exc.retry_after,
    )


async def trigger_once(
    client: AirflowClient, dag_id: str, dag_run_id: str, conf: Mapping[str, Any]
) -> Outcome:
    """Trigger ``dag_id`` as ``dag_run_id``; an existing run of that id means done already."""
    what = f"trigger DAG {dag_id} (run {dag_run_id})"
    detail: dict[str, JSON] = {"dag_id": dag_id, "dag_run_id": dag_run_id, "conf": dict(conf)}
    try:
        run = await client.trigger(dag_id, conf=conf, dag_run_id=dag_run_id)
    except AirflowConflict as exc:
        # Ours from an earlier attempt (a crash or timeout after Airflow took
        # it), or a clash of logical dates: only the former is success.
        try:
            existing = await client.get_run(dag_id, dag_run_id)
        except AirflowNotFound:
            raise ActionError(
                f"{what}: HTTP 409 ({exc.detail}) and no run {dag_run_id} exists",
                retryable=False,
                status=409,
            ) from exc
        except AirflowError as inner:
            raise airflow_error(inner, what) from inner
        if dict(existing.conf) != dict(conf):
            # Not our run: the window this trigger was for is not covered by it.
            raise ActionError(
                f"{what}: a run {dag_run_id} already exists with another conf"
                f" ({_json(existing.conf)}, state {existing.state}; wanted {_json(conf)}),"
                " so this trigger did not run; check that run and trigger the DAG by hand",
                retryable=False,
                status=409,
            ) from exc
        detail["state"] = existing.state
        detail["note"] = "run already triggered (HTTP 409 on repeat)"
        return Outcome(previous=None, detail=detail, changed=False)
    except AirflowError as exc:
        raise airflow_error(exc, what) from exc
    detail["state"] = run.state
    return Outcome(previous=None, detail=detail, changed=True)


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, default=str)


def no_revert(name: str) -> ActionError:
    return ActionError(f"{name} is not reversible: nothing to undo", retryable=False)


class TriggerDag:
    """Base of the actions that trigger one run of a DAG per incident (fallback, backfill).

    Not reversible; the run id comes from the incident (see ``run_id``), so a
    repeat is Airflow's 409 and counts as done.  Subclasses write ``targets``
    with ``_check_no_params`` and ``_target``.
    """

    name: ClassVar[str]
    kind: ClassVar[str]  # in the run id: feedguard__<kind>__<provider>__<incident>
    reversible: ClassVar[bool] = False
    circuit: ClassVar[str] = "airflow"

    def __init__(self, client: AirflowClient, dag_id: str) -> None:
        self._client = client
        self._dag_id = dag_id

    def _check_no_params(self, ctx: StepContext) -> None:
        if ctx.params:
            raise ActionError(
                f"{self.name}: takes no parameters, got {sorted(ctx.params)}",
                retryable=False,
            )

    def _target(self, ctx: StepContext, description: str, conf: dict[str, JSON]) -> Target:
        return Target(
            description=description,
            resource=None,
            params={
                "dag_id": self._dag_id,
                "dag_run_id": run_id(self.kind, ctx.provider.name, ctx.incident.id),
                "conf": conf,
            },
        )

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        conf = target.params["conf"]
        if not isinstance(conf, Mapping):
            raise ActionError(f"{self.name}: target has no conf mapping: {conf!r}", retryable=False)
        return await trigger_once(
            self._client, str(target.params["dag_id"]), str(target.params["dag_run_id"]), conf
        )

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        raise no_revert(self.name)
