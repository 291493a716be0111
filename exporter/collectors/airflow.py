"""DAG heartbeats from Airflow's REST API: last run, last success, paused, newest state.

Per scrape: one request for the paused flags of every catalog DAG (Airflow 3.1+
reads ``dag_id_pattern=a|b`` as OR) and one runs request per DAG (newest first
by start date, a window of ``runs_window`` runs), all concurrently. The newest
success is looked for in that window; a DAG whose window holds none is asked
once per process for its newest success (``state=success``), after which the
value is kept and only moves forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ..airflow import AirflowClient, DagInfo, DagRun
from ..catalog import Catalog
from ..log import get_logger
from .base import Deadline

log = get_logger(__name__)

# DagRunState in Airflow 2 and 3.
RUN_STATES = ("queued", "running", "success", "failed")


def catalog_dags(catalog: Catalog) -> list[str]:
    """Every DAG of the enabled providers, once, in catalog order."""
    return list(dict.fromkeys(dag for p in catalog.enabled for dag in p.dags))


@dataclass(frozen=True)
class DagStatus:
    paused: bool
    last_run: float | None
    last_success: float | None
    state: str | None


def newest_run(runs: Sequence[DagRun]) -> DagRun | None:
    """The newest run: a queued run not started yet counts as newer than any started one.

    Sorted here because databases disagree on where NULL start dates go.
    """
    if not runs:
        return None
    waiting = [r for r in runs if r.start_date is None]
    if waiting:
        return waiting[0]
    return max(runs, key=lambda r: r.start_timestamp or 0.0)


def newest_start(runs: Sequence[DagRun]) -> float | None:
    starts = [r.start_timestamp for r in runs if r.start_timestamp is not None]
    return max(starts) if starts else None


def newest_success(runs: Sequence[DagRun]) -> float | None:
    ends = [r.end_timestamp for r in runs if r.state == "success" and r.end_timestamp is not None]
    return max(ends) if ends else None


class AirflowCollector:
    name = "airflow"

    def __init__(
        self,
        client: AirflowClient,
        catalog: Catalog,
        runs_window: int = 25,
        concurrency: int = 8,
    ) -> None:
        self._client = client
        self._dags = catalog_dags(catalog)
        self._window = runs_window
        self._semaphore = asyncio.Semaphore(concurrency)
        # Survive between scrapes: values only move forward (a success that fell
        # out of the window is still the last success).
        self._last_success: dict[str, float] = {}
        self._last_run: dict[str, float] = {}
        self._success_looked_up: set[str] = set()
        self._missing_reported: set[str] = set()

    async def _runs(self, dag_id: str) -> tuple[list[DagRun], float | None]:
        async with self._semaphore:
            runs = await self._client.list_runs(dag_id, limit=self._window)
            success = newest_success(runs)
            if success is None and dag_id not in self._success_looked_up:
                # Once per process: the window may hold only failures.
                older = await self._client.list_runs(
                    dag_id, limit=1, order_by="-end_date", states=["success"]
                )
                success = newest_success(older)
            self._success_looked_up.add(dag_id)
            return runs, success

    def _status(self, dag: DagInfo, runs: list[DagRun], success: float | None) -> DagStatus:
        dag_id = dag.dag_id
        if success is not None:
            self._last_success[dag_id] = max(success, self._last_success.get(dag_id, success))
        start = newest_start(runs)
        if start is not None:
            self._last_run[dag_id] = max(start, self._last_run.get(dag_id, start))
        newest = newest_run(runs)
        return DagStatus(
            paused=dag.is_paused,
            last_run=self._last_run.get(dag_id),
            last_success=self._last_success.get(dag_id),
            state=newest.state if newest else None,
        )

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        infos = await self._client.list_dags(self._dags)
        present = [d for d in self._dags if d in infos]
        for dag_id in self._dags:
            if dag_id not in infos and dag_id not in self._missing_reported:
                self._missing_reported.add(dag_id)
                log.warning("catalog DAG not found in Airflow", dag_id=dag_id)
        gathered = await asyncio.gather(*(self._runs(d) for d in present))
        statuses = {
            dag_id: self._status(infos[dag_id], runs, success)
            for dag_id, (runs, success) in zip(present, gathered, strict=True)
        }
        return self._families(statuses)

    @staticmethod
    def _families(statuses: dict[str, DagStatus]) -> list[Metric]:
        last_success = GaugeMetricFamily(
            "external_dag_last_success_timestamp",
            "End of the last successful DAG run (epoch seconds).",
            labels=["dag_id"],
        )
        last_run = GaugeMetricFamily(
            "external_dag_last_run_timestamp",
            "Start of the newest DAG run of any kind (the heartbeat, epoch seconds).",
            labels=["dag_id"],
        )
        paused = GaugeMetricFamily(
            "external_dag_paused", "1 when the DAG is paused.", labels=["dag_id"]
        )
        state = GaugeMetricFamily(
            "external_dag_last_run_state",
            "State of the newest DAG run: 1 for the current state, 0 for the others.",
            labels=["dag_id", "state"],
        )
        for dag_id, status in statuses.items():
            paused.add_metric([dag_id], 1.0 if status.paused else 0.0)
            if status.last_run is not None:
                last_run.add_metric([dag_id], status.last_run)
            if status.last_success is not None:
                last_success.add_metric([dag_id], status.last_success)
            if status.state is not None:
                for candidate in RUN_STATES:
                    state.add_metric([dag_id, candidate], 1.0 if candidate == status.state else 0.0)
        return [last_success, last_run, paused, state]
