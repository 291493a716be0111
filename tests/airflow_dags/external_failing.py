"""Test DAG for feedguard: unscheduled, its one task always fails (for failed-run states)."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

with DAG(
    dag_id="external_failing",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    tags=["feedguard-test"],
):

    @task(retries=0)
    def fail() -> None:
        raise RuntimeError("feedguard test DAG: failing on purpose")

    fail()
