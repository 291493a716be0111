"""Verified recovery's I/O: one poll per due incident, as scheduled work.

A ``verifying`` incident is served like any live one, every scheduler tick,
under its lease; when its next poll is due (``verification.next_poll_at``) this
reads the backfill's DAG run from Airflow (``GET dags/{id}/dagRuns/{run}``), or
the quality suite's newest result from the GX validations store and (with
``verification.dbt_tests``) dbt's run_results.json, each half until it passed,
once, and records what it saw through ``verification_polls``.  Nothing sleeps while
holding the lease, and the stage and bounds live in the store, so a restart or
another replica carries on where the last poll left off.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowError
from feedguard.core.dbt_results import DbtResultsError, RunResultsFile
from feedguard.core.gx_results import ValidationStore, ValidationStoreError
from feedguard.core.log import get_logger

from . import verification_polls as polls
from . import verified_recovery as vr
from .common import Common, Part
from .config import ResponderConfig

Doc = dict[str, Any]
log = get_logger(__name__)


def verification_plan(config: ResponderConfig, provider: str) -> vr.Plan | None:
    """What to verify for this provider's incidents (its catalog ``quality_suite``, else
    ``verification.suite``; with the dbt tests on, its ``dbt_select``, else
    ``verification.dbt_tests.select``); None when verification is off."""
    settings = config.verification
    if not settings.enabled:
        return None
    found = config.providers.get(provider)
    suite = found.quality_suite if found is not None else None
    tests = settings.dbt_tests
    select = found.dbt_select if found is not None else None
    return vr.Plan(
        suite=suite or settings.suite,
        poll_interval=settings.poll_interval_seconds,
        backfill_timeout=settings.backfill_timeout_seconds,
        quality_timeout=settings.quality_timeout_seconds,
        dbt_select=(select or tests.select) if tests.enabled else None,
    )


class Verifier(Part):
    def __init__(self, common: Common, airflow: AirflowClient | None) -> None:
        super().__init__(common)
        self.airflow = airflow
        settings = self.config.verification
        self._results = ValidationStore(Path(settings.validations_dir))
        self._results_lock = asyncio.Lock()  # the store's caches: one thread at a time
        self._dbt = RunResultsFile(Path(settings.dbt_tests.run_results_path))
        self._dbt_lock = asyncio.Lock()  # the file's cache: one thread at a time

    def plan(self, provider: str) -> vr.Plan | None:
        return verification_plan(self.config, provider)

    async def check(self, doc: Doc) -> Doc:
        """Poll once if due; returns the incident as it is after the poll."""
        if not polls.due(doc, self.clock()):
            return doc
        verification = doc["verification"]
        stage = verification["stage"]
        attributes = {"feedguard.incident_id": doc["id"], "feedguard.verification.stage": stage}
        # One span per poll, in the incident's trace; the timeline entries it adds carry it.
        with self.tracing.span(f"verify {stage}", doc.get("trace"), attributes=attributes):
            if stage == vr.BACKFILL:
                run = await self._poll_run(verification["backfill"])

                def record(current: Doc, now: float) -> bool:
                    return polls.run_polled(current, run, now)

            else:
                # A half that passed is not looked at again (its result is recorded).
                suite_done = verification["suite"].get("success") is True
                dbt = verification.get("dbt_tests")
                suite = (
                    None if suite_done else await self._poll_suite(verification["suite"]["name"])
                )
                tests = await self._poll_dbt() if dbt and dbt.get("success") is not True else None

                def record(current: Doc, now: float) -> bool:
                    return polls.quality_polled(current, suite, tests, now)

            def change(current: Doc | None) -> tuple[Doc | None, Doc | None]:
                if current is None or not polls.due(current, self.clock()):
                    return None, current  # another replica polled meanwhile
                return (current if record(current, self.clock()) else None), current

            updated: Doc | None = await self.store.update("incident", doc["id"], change)
        if updated is not None and vr.failed(updated) and not vr.failed(doc):
            log.error(
                "verified recovery failed: incident needs attention",
                incident_id=doc["id"],
                reason=updated["verification"]["reason"],
            )
        return updated if updated is not None else doc

    async def _poll_run(self, backfill: Doc) -> polls.RunPoll:
        if self.airflow is None:
            return polls.RunPoll(None, error="no Airflow client (actions.airflow)")
        dag_id, run_id = backfill["dag_id"], backfill["dag_run_id"]
        try:
            run = await self.airflow.get_run(dag_id, run_id)
        except AirflowError as exc:
            error = f"GET DAG run {dag_id}/{run_id}: HTTP {exc.status}: {exc.detail}"
            return polls.RunPoll(None, error=error)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return polls.RunPoll(None, error=f"GET DAG run {dag_id}/{run_id}: {exc!r}")
        return polls.RunPoll(run.state, run.start_timestamp, run.end_timestamp)

    async def _poll_suite(self, suite: str) -> polls.SuitePoll:
        async with self._results_lock:
            try:
                results = await asyncio.to_thread(self._results.scan, (suite,))
            except (ValidationStoreError, OSError) as exc:
                return polls.SuitePoll(False, error=str(exc))
        if not results:  # the suite's folder holds no run yet
            return polls.SuitePoll(False)
        found = results[0]  # scan keeps only the suite asked for
        return polls.SuitePoll(
            True,
            success=found.success,
            run_time=found.run_time,
            unsuccessful=found.unsuccessful,
            evaluated=found.evaluated,
        )

    async def _poll_dbt(self) -> polls.DbtPoll:
        async with self._dbt_lock:
            try:
                return polls.DbtPoll(await asyncio.to_thread(self._dbt.read))
            except DbtResultsError as exc:
                return polls.DbtPoll(None, error=str(exc))
