"""Test DAGs for feedguard's throw-away Airflow: unscheduled, one quick task each.

The names are the runbook's DAGs plus two that only the client and collector
tests use; ``external_failing`` always fails, for failed-run states.  The
verified-recovery tests follow backfills of their own: ``feedguard_backfill_succeeds``,
``feedguard_backfill_fails`` and ``feedguard_backfill_gated``, which fails unless the
Airflow Variable ``feedguard_backfill_allowed`` is ``yes`` (read when the task runs, so
a test can make a cleared run pass by setting it through the REST API).
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Variable, task

QUICK = (
    "external_data_ingest",
    "external_backfill",
    "external_data_fallback",
    "external_data_backfill",
    "feedguard_client_test",
    "feedguard_heartbeat_test",
    "feedguard_backfill_succeeds",
)

# The gated backfill's switch: its task passes only while this Variable is "yes".
GATE = "feedguard_backfill_allowed"


def _dag(dag_id: str, fails: bool = False, gated: bool = False) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        catchup=False,
        tags=["feedguard-test"],
    ) as dag:

        @task(retries=0)
        def run() -> None:
            if fails:
                raise RuntimeError("feedguard test DAG: failing on purpose")
            # Read in the task (Task SDK, through the execution API), never at parse time.
            if gated and Variable.get(GATE, default=None) != "yes":
                raise RuntimeError(f"feedguard test DAG: Variable {GATE} is not 'yes'")
            print("feedguard test run")

        run()
    return dag


# Airflow discovers DAGs among a module's globals.
for _dag_id in QUICK:
    globals()[_dag_id] = _dag(_dag_id)
external_failing = _dag("external_failing", fails=True)
feedguard_backfill_fails = _dag("feedguard_backfill_fails", fails=True)
feedguard_backfill_gated = _dag("feedguard_backfill_gated", gated=True)
