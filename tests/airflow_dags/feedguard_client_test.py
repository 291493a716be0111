"""Test DAG for feedguard: unscheduled, one quick task."""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

with DAG(
    dag_id="feedguard_client_test",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    tags=["feedguard-test"],
):

    @task
    def run() -> None:
        print("feedguard test run")

    run()
