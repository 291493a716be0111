"""Runbook 3.4: where the provider has a local mirror, load from it instead.

``airflow dags trigger external_data_fallback --conf '{"provider": "ISO-NE"}'``,
only for providers the catalog marks ``fallback_mirror: true``.  The run id
is derived from the incident, so a repeat after a crash is Airflow's 409 and
counts as done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ..plugins import StepContext, Target
from .airflow_common import TriggerDag


class TriggerFallback(TriggerDag):
    name: ClassVar[str] = "trigger_fallback"
    kind: ClassVar[str] = "fallback"

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        self._check_no_params(ctx)
        if not ctx.provider.fallback_mirror:
            return []
        provider = ctx.provider.name
        return [
            self._target(ctx, f"trigger DAG {self._dag_id} for {provider}", {"provider": provider})
        ]
