"""Runbook 5.3: backfill the whole missed window once the provider is back.

Triggers ``external_data_backfill`` with conf ``{"provider", "start_date",
"end_date"}``: from the last success before the outage (the incident's open
time when that is unknown) to the recovery, as UTC dates, both days
included.  The run id is derived from the incident: a repeat is a 409, done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from exporter.airflow import AirflowClient

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .airflow_common import no_revert, run_id, trigger_once


def utc_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


def missed_window(ctx: StepContext) -> tuple[str, str]:
    """(start_date, end_date) of the backfill, YYYY-MM-DD in UTC, days inclusive."""
    incident = ctx.incident
    start = incident.last_success_before
    if start is None:
        start = incident.opened_at
    end = incident.recovered_at if incident.recovered_at is not None else ctx.now
    return utc_date(start), utc_date(max(start, end))


class TriggerBackfill:
    name: ClassVar[str] = "trigger_backfill"
    reversible: ClassVar[bool] = False
    circuit: ClassVar[str] = "airflow"

    def __init__(self, client: AirflowClient, dag_id: str) -> None:
        self._client = client
        self._dag_id = dag_id

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        if ctx.params:
            raise ActionError(
                f"trigger_backfill: takes no parameters, got {sorted(ctx.params)}",
                retryable=False,
            )
        provider = ctx.provider.name
        start_date, end_date = missed_window(ctx)
        return [
            Target(
                description=(
                    f"trigger DAG {self._dag_id} for {provider} from {start_date} to {end_date}"
                ),
                resource=None,
                params={
                    "dag_id": self._dag_id,
                    "dag_run_id": run_id("backfill", provider, ctx.incident.id),
                    "conf": {
                        "provider": provider,
                        "start_date": start_date,
                        "end_date": end_date,
                    },
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
