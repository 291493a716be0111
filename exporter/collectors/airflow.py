"""DAG heartbeats from Airflow's REST API: last run, last success, paused, newest state.

Per scrape, whatever the number N of catalog DAGs: one DAG-list request for the
paused flags and one batch runs request (``POST /dags/~/dagRuns/list``) for the
newest runs of all of them, ordered by start date, a window of ``runs_window``
runs per DAG up to ``BATCH_LIMIT``. So 2 requests in the steady state (for one
DAG that is one more than one per DAG: the paused flag and the runs are separate
resources in both API generations).

A shared window can miss a DAG that runs rarely next to one that runs often.
The window holds every run that started after its oldest start (its *floor*),
or every run at all when ``total_entries`` says so. A DAG with no run started
after the floor gets its own runs request (``runs_window`` runs); the answer is
kept while it stays true: all those runs finished, and the window still reaches
back to the newest start seen when they were fetched (so a newer run of that DAG
would be in the window). Such follow-ups, and the once-per-process lookup of the
newest success for a DAG whose runs hold none, are the only extra requests.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.airflow import AirflowClient, DagInfo, DagRun, RunPage
from feedguard.core.catalog import Catalog
from feedguard.core.log import get_logger

from .base import Deadline

log = get_logger(__name__)

# DagRunState in Airflow 2 and 3.
RUN_STATES = ("queued", "running", "success", "failed")
FINISHED = frozenset({"success", "failed"})
# Airflow's default [api] maximum_page_limit: the batch window never asks more.
BATCH_LIMIT = 100


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


def window_floor(page: RunPage) -> float:
    """Every listed DAG's run that started after this time is in the page.

    -inf when the page holds every match; +inf when it proves nothing (full of
    runs not started yet). Runs starting exactly at the floor may be cut off.
    """
    if page.complete:
        return -math.inf
    starts = [r.start_timestamp for r in page.runs if r.start_timestamp is not None]
    return min(starts) if starts else math.inf


@dataclass(frozen=True)
class OwnRuns:
    """A DAG's newest runs from its own request, because the shared window missed it."""

    runs: tuple[DagRun, ...]
    # Newest start seen anywhere when fetched: a later run of this DAG starts after it.
    horizon: float

    def still_true(self, floor: float) -> bool:
        return floor <= self.horizon and all(r.state in FINISHED for r in self.runs)


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
        self._own: dict[str, OwnRuns] = {}

    def batch_limit(self, dags: int) -> int:
        return max(1, min(self._window * dags, BATCH_LIMIT))

    async def _own_runs(self, dag_id: str, horizon: float) -> list[DagRun]:
        async with self._semaphore:
            runs = await self._client.list_runs(dag_id, limit=self._window)
        start = newest_start(runs)
        seen = max(horizon, start) if start is not None else horizon
        self._own[dag_id] = OwnRuns(tuple(runs), seen)
        return runs

    async def _success(self, dag_id: str, runs: list[DagRun], complete: bool) -> float | None:
        success = newest_success(runs)
        if success is None and not complete and dag_id not in self._success_looked_up:
            # Once per process: the runs read may hold only failures.
            async with self._semaphore:
                older = await self._client.list_runs(
                    dag_id, limit=1, order_by="-end_date", states=["success"]
                )
            success = newest_success(older)
        self._success_looked_up.add(dag_id)
        return success

    async def _runs(
        self, page: RunPage, dags: list[str]
    ) -> tuple[dict[str, list[DagRun]], set[str]]:
        """Each DAG's newest runs: its share of the batch window, plus its own runs
        (kept or fetched) when the window does not reach it; and the DAGs whose
        runs are all of them (every run the DAG has in Airflow)."""
        floor = window_floor(page)
        horizon = newest_start(page.runs)
        shares: dict[str, list[DagRun]] = {d: [] for d in dags}
        for run in page.runs:
            if run.dag_id in shares:
                shares[run.dag_id].append(run)
        runs: dict[str, list[DagRun]] = {}
        complete: set[str] = set()
        fetch: list[str] = []
        for dag_id, share in shares.items():
            if floor == -math.inf or any((r.start_timestamp or -math.inf) > floor for r in share):
                self._own.pop(dag_id, None)
                runs[dag_id] = share
                if floor == -math.inf:
                    complete.add(dag_id)
                continue
            own = self._own.get(dag_id)
            if own is not None and own.still_true(floor):
                runs[dag_id] = share + list(own.runs)
                if len(own.runs) < self._window:
                    complete.add(dag_id)
            else:
                fetch.append(dag_id)
        if fetch:
            log.debug("DAGs outside the shared runs window", dag_ids=fetch)
        fetched = await asyncio.gather(
            *(self._own_runs(d, horizon if horizon is not None else -math.inf) for d in fetch)
        )
        for dag_id, own_runs in zip(fetch, fetched, strict=True):
            runs[dag_id] = shares[dag_id] + own_runs
            if len(own_runs) < self._window:
                complete.add(dag_id)
        return runs, complete

    def _status(
        self, dag: DagInfo, runs: list[DagRun], success: float | None, complete: bool
    ) -> DagStatus:
        dag_id = dag.dag_id
        if complete:
            # Every run the DAG has is here: what is remembered beyond them
            # belongs to runs that are gone (deleted, a metadata DB reset).
            self._last_success.pop(dag_id, None)
            self._last_run.pop(dag_id, None)
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
        if not self._dags:
            return self._families({})
        # Both at once: a catalog DAG missing from Airflow just has no runs.
        listing = asyncio.ensure_future(self._client.list_dags(self._dags))
        batch = asyncio.ensure_future(
            self._client.list_runs_batch(self._dags, limit=self.batch_limit(len(self._dags)))
        )
        try:
            infos, page = await asyncio.gather(listing, batch)
        except BaseException:
            # One failed (or the deadline hit): the other's answer is of no use.
            listing.cancel()
            batch.cancel()
            raise
        present = [d for d in self._dags if d in infos]
        for dag_id in self._dags:
            if dag_id not in infos and dag_id not in self._missing_reported:
                self._missing_reported.add(dag_id)
                log.warning("catalog DAG not found in Airflow", dag_id=dag_id)
        if not present:
            return self._families({})
        runs, complete = await self._runs(page, present)
        successes = await asyncio.gather(
            *(self._success(d, runs[d], d in complete) for d in present)
        )
        statuses = {
            dag_id: self._status(infos[dag_id], runs[dag_id], success, dag_id in complete)
            for dag_id, success in zip(present, successes, strict=True)
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
