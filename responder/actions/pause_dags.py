"""Runbook 3.2 and 5.2: pause the provider's ingestion DAGs, and unpause them.

One target per DAG the catalog lists for the provider; the resource key is
the DAG, so two providers sharing a DAG keep it paused until both recovered
(the core's reference counting).  A DAG already paused when the first
incident reaches it was paused by someone else: it is recorded as such
(previous ``True``) and recovery leaves it paused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowError

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .airflow_common import airflow_error
from .params import check_params

_RUN_STATES = ("running", "queued")


class PauseDags:
    name: ClassVar[str] = "pause_dags"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "airflow"

    def __init__(self, client: AirflowClient) -> None:
        self._client = client

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        check_params(self.name, ctx.params, ("dags",))
        dags = ctx.params.get("dags", list(ctx.provider.dags))
        if not isinstance(dags, list | tuple) or not all(isinstance(d, str) for d in dags):
            raise ActionError(
                f"pause_dags: parameter dags must be a list of DAG ids, got {dags!r}",
                retryable=False,
            )
        return [
            Target(
                description=f"pause DAG {dag_id}",
                resource=f"airflow:dag:{dag_id}",
                params={"dag_id": dag_id},
            )
            for dag_id in dags
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        dag_id = str(target.params["dag_id"])
        what = f"pause DAG {dag_id}"
        try:
            dag = await self._client.get_dag(dag_id)
            intent = ctx.intents.get(target)
            if dag.is_paused and intent is not None:
                # Our own pause from an attempt that timed out or a replica that died
                # before recording it: not an operator's, so recovery unpauses it.
                return Outcome(
                    previous=intent.previous,
                    detail={
                        **intent.detail,
                        "dag_id": dag_id,
                        "note": "paused by an earlier attempt",
                    },
                    changed=False,
                )
            if dag.is_paused:
                return Outcome(
                    previous=True,
                    detail={
                        "dag_id": dag_id,
                        "note": "already paused (not by feedguard): left paused on recovery",
                    },
                    changed=False,
                )
            # Captured before pausing: a failure here changes nothing, and the
            # runs in flight at that moment are the ones to look at on resume.
            runs = await self._client.list_runs(dag_id, limit=100, states=_RUN_STATES)
            in_flight: dict[str, JSON] = {
                state: [r.dag_run_id for r in runs if r.state == state] for state in _RUN_STATES
            }
            await ctx.intents.record(target, False, True, in_flight)  # before the PATCH
            await self._client.set_paused(dag_id, True)
        except AirflowError as exc:
            raise airflow_error(exc, what) from exc
        return Outcome(previous=False, detail={"dag_id": dag_id, **in_flight}, changed=True)

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        dag_id = str(target.params["dag_id"])
        if previous is True:
            return Outcome(
                previous=True,
                detail={"dag_id": dag_id},
                changed=False,
                left_alone="was paused before feedguard; kept paused",
            )
        what = f"unpause DAG {dag_id}"
        try:
            dag = await self._client.get_dag(dag_id)
            if not dag.is_paused:
                return Outcome(
                    previous=False,
                    detail={"dag_id": dag_id, "note": "already unpaused"},
                    changed=False,
                )
            await self._client.set_paused(dag_id, False)
        except AirflowError as exc:
            raise airflow_error(exc, what) from exc
        return Outcome(previous=True, detail={"dag_id": dag_id}, changed=True)
