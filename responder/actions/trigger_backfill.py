"""Runbook 5.3: backfill the whole missed window once the provider is back.

Triggers ``external_data_backfill`` with conf ``{"provider", "start_date",
"end_date"}``: from the last success before the outage (the incident's open
time when that is unknown) to the recovery, as UTC dates, both days
included.  The run id is derived from the incident: a repeat is a 409, done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

from ..plugins import StepContext, Target
from .airflow_common import TriggerDag


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


class TriggerBackfill(TriggerDag):
    name: ClassVar[str] = "trigger_backfill"
    kind: ClassVar[str] = "backfill"

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        self._check_no_params(ctx)
        provider = ctx.provider.name
        start_date, end_date = missed_window(ctx)
        return [
            self._target(
                ctx,
                f"trigger DAG {self._dag_id} for {provider} from {start_date} to {end_date}",
                {"provider": provider, "start_date": start_date, "end_date": end_date},
            )
        ]
