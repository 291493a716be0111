"""SeaTunnel streaming jobs (runbook 1: ISO feeds to Kafka) from the Zeta REST API v2.

Per scrape, whatever the number of catalog jobs: ``/overview``, ``/running-jobs``
and ``/finished-jobs/{FAILED,CANCELED,SAVEPOINT_DONE}`` at once, plus one
``/job-info/{id}`` for each catalog job that was seen with an id and is no
longer in the running list (its end state, even once the finished lists have
dropped it).

A catalog job's status is, in that order: its entry in ``/running-jobs`` (one
that is RUNNING when the name appears twice), the answer of ``/job-info`` for
the last id seen, its newest entry in the finished lists, else ``NOT_FOUND``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.catalog import Catalog
from feedguard.core.seatunnel import JOB_STATES, Job, Overview, SeaTunnelClient

from .base import Deadline

NOT_FOUND = "NOT_FOUND"
STATUSES = (*JOB_STATES, NOT_FOUND)
_FINISHED_LISTS = ("FAILED", "CANCELED", "SAVEPOINT_DONE")


def pick_running(jobs: Sequence[Job]) -> dict[str, Job]:
    """By name: the RUNNING entry if any, else the newest created."""
    chosen: dict[str, Job] = {}
    for job in jobs:
        current = chosen.get(job.name)
        if current is None or _rank(job) > _rank(current):
            chosen[job.name] = job
    return chosen


def _rank(job: Job) -> tuple[bool, str]:
    return (job.status == "RUNNING", job.create_time or "")


def newest_finished(jobs: Sequence[Job]) -> dict[str, Job]:
    chosen: dict[str, Job] = {}
    for job in jobs:
        current = chosen.get(job.name)
        if current is None or (job.finish_time or "") >= (current.finish_time or ""):
            chosen[job.name] = job
    return chosen


class SeaTunnelCollector:
    name = "seatunnel"

    def __init__(self, client: SeaTunnelClient, catalog: Catalog) -> None:
        self._client = client
        self._jobs = [(provider, job.name) for provider, job in catalog.streaming_jobs()]
        # Survive between scrapes.
        self._last_running: dict[str, float] = {}
        self._last_id: dict[str, str] = {}

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        try:
            return await self._collect()
        except ExceptionGroup as failed:
            # The first failure says what is wrong (the scrape logs it); the rest repeat it.
            raise failed.exceptions[0] from None

    async def _collect(self) -> Sequence[Metric]:
        async with asyncio.TaskGroup() as group:
            overview_task = group.create_task(self._client.overview())
            running_task = group.create_task(self._client.running_jobs())
            finished_tasks = [
                group.create_task(self._client.finished_jobs(state)) for state in _FINISHED_LISTS
            ]
        now = time.time()
        running = pick_running(running_task.result())
        failed, cancelled, saved = (task.result() for task in finished_tasks)
        names = [name for _, name in self._jobs]
        gone = [n for n in names if n not in running and n in self._last_id]
        async with asyncio.TaskGroup() as group:
            info_tasks = [group.create_task(self._client.job_info(self._last_id[n])) for n in gone]
        infos = {n: t.result() for n, t in zip(gone, info_tasks, strict=True)}
        finished = newest_finished([*failed, *cancelled, *saved])
        statuses: dict[str, str] = {}
        for name in names:
            job = running.get(name) or infos.get(name) or finished.get(name)
            statuses[name] = job.status if job is not None else NOT_FOUND
            if job is not None:
                self._last_id[name] = job.job_id
            if statuses[name] == "RUNNING":
                self._last_running[name] = now
        return self._families(overview_task.result(), statuses, failed, cancelled)

    def _families(
        self,
        overview: Overview,
        statuses: dict[str, str],
        failed: Sequence[Job],
        cancelled: Sequence[Job],
    ) -> list[Metric]:
        # Not "job": Prometheus' target label would rename it to exported_job.
        labels = ["provider", "streaming_job"]
        status = GaugeMetricFamily(
            "external_streaming_job_status",
            "SeaTunnel job status: 1 for the current status, 0 for the others "
            "(NOT_FOUND: the engine knows no job of that name).",
            labels=[*labels, "status"],
        )
        last_running = GaugeMetricFamily(
            "external_streaming_job_last_running_timestamp",
            "When this exporter last saw the job RUNNING (epoch seconds).",
            labels=labels,
        )
        failed_runs = GaugeMetricFamily(
            "external_streaming_job_failed_runs",
            "Runs of the job in the engine's finished-job history that FAILED.",
            labels=labels,
        )
        cancelled_runs = GaugeMetricFamily(
            "external_streaming_job_cancelled_runs",
            "Runs of the job in the engine's finished-job history that were CANCELED.",
            labels=labels,
        )
        for provider, name in self._jobs:
            for candidate in STATUSES:
                status.add_metric([provider, name, candidate], float(candidate == statuses[name]))
            if name in self._last_running:
                last_running.add_metric([provider, name], self._last_running[name])
            failed_runs.add_metric([provider, name], sum(j.name == name for j in failed))
            cancelled_runs.add_metric([provider, name], sum(j.name == name for j in cancelled))
        cluster = GaugeMetricFamily(
            "external_streaming_cluster_jobs",
            "Jobs the SeaTunnel cluster counts by state (GET /overview).",
            labels=["state"],
        )
        for state, value in (
            ("running", overview.running),
            ("finished", overview.finished),
            ("failed", overview.failed),
            ("cancelled", overview.cancelled),
        ):
            cluster.add_metric([state], value)
        workers = GaugeMetricFamily(
            "external_streaming_cluster_workers", "Workers of the SeaTunnel cluster."
        )
        workers.add_metric([], overview.workers)
        return [status, last_running, failed_runs, cancelled_runs, cluster, workers]
