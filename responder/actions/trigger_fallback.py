"""Runbook 3.4: where the provider has a local mirror, load from it instead.

``airflow dags trigger external_data_fallback --conf '{"provider": "ISO-NE"}'``,
only for providers the catalog marks ``fallback_mirror: true``.  The run id
is derived from the incident, so a repeat after a crash is Airflow's 409 and
counts as done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from exporter.airflow import AirflowClient

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .airflow_common import no_revert, run_id, trigger_once


class TriggerFallback:
    name: ClassVar[str] = "trigger_fallback"
    reversible: ClassVar[bool] = False
    circuit: ClassVar[str] = "airflow"

    def __init__(self, client: AirflowClient, dag_id: str) -> None:
        self._client = client
        self._dag_id = dag_id

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        if ctx.params:
            raise ActionError(
                f"trigger_fallback: takes no parameters, got {sorted(ctx.params)}",
                retryable=False,
            )
        if not ctx.provider.fallback_mirror:
            return []
        provider = ctx.provider.name
        return [
            Target(
                description=f"trigger DAG {self._dag_id} for {provider}",
                resource=None,
                params={
                    "dag_id": self._dag_id,
                    "dag_run_id": run_id("fallback", provider, ctx.incident.id),
                    "conf": {"provider": provider},
                },
            )
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        conf = target.params["conf"]
        if not isinstance(conf, Mapping):
            raise ActionError(f"{self.name}: target has no conf mapping: {conf!r}", retryable=False)
        return await trigger_once(
            self._client, str(target.params["dag_id"]), str(target.params["dag_run_id"]), conf
        )

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        raise no_revert(self.name)
