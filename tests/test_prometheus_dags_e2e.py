"""DAG panels and ExternalDagHeartbeatMissing against a real Airflow 3, through Prometheus.

The session's Airflow (tests/conftest.py ``airflow_instance``) runs the test
DAGs of tests/airflow_dags; feedguard-exporter's DAG collector reads it, and a
real prometheus with the repo's rules scrapes the exporter. The DAG panels of
the dashboards, which tests/test_prometheus_e2e.py can only run, must show
data here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .support.airflow import AirflowInstance
from .support.dashboards import Target, targets
from .support.prometheus import Stack, exporter_stack, wait_for
from .support.services import Service

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((REPO / "rules").glob("*.rules.yml"))
DAGS = ("external_data_ingest", "external_backfill")
INGEST = DAGS[0]
DAG_TARGETS = [t for t in targets() if re.search(r"external_dag", t.expr)]


@pytest.fixture(scope="module")
def dag_stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_service: Service,
    airflow_instance: AirflowInstance,
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("prometheus-dags")
    airflow = airflow_instance
    was_paused = {dag: airflow.is_paused(dag) for dag in DAGS}
    # One finished run of the ingestion DAG: its heartbeat is fresh.
    airflow.set_paused(INGEST, False)
    run = airflow.trigger(INGEST)
    finished = airflow.wait_for_run(INGEST, run["dag_run_id"])
    assert finished["state"] == "success", finished

    catalog_file = work / "external_providers.yml"
    catalog_file.write_text(
        yaml.safe_dump({"providers": [{"name": "EIA", "datasets": ["d"], "dags": list(DAGS)}]})
    )
    settings = airflow.settings()
    exporter_config = {
        "catalog_file": str(catalog_file),
        "redis": {"url": f"redis://127.0.0.1:{redis_service.port}/6"},
        "probes": {"enabled": False},
        "airflow": {
            "enabled": True,
            "base_url": settings.base_url,
            "version": "3",
            "username": settings.username,
            "password": settings.password,
            "timeout_seconds": 5,
        },
        "log": {"format": "json"},
    }
    try:
        # Airflow's API is slower than Redis: a 3 s scrape timeout leaves the collector 2.5 s.
        with exporter_stack(work, exporter_config, RULE_FILES, interval="3s") as stack:
            wait_for(
                "both DAGs in Prometheus",
                lambda: len(stack.prometheus.query("external_dag_paused")) == len(DAGS),
                timeout=60,
            )
            yield stack
    finally:
        airflow.clear_runs(INGEST)
        for dag, paused in was_paused.items():
            airflow.set_paused(dag, paused)


@pytest.mark.parametrize("target", DAG_TARGETS, ids=str)
def test_dag_panel_shows_data(dag_stack: Stack, target: Target) -> None:
    found = wait_for(
        f"{target} to return series",
        lambda: dag_stack.prometheus.query(target.promql),
        timeout=30,
    )
    assert found


def test_fresh_heartbeat_does_not_alert_and_pausing_shows(
    dag_stack: Stack, airflow_instance: AirflowInstance
) -> None:
    prometheus = dag_stack.prometheus
    (age,) = prometheus.query(f'external_dag:heartbeat_age_seconds{{dag_id="{INGEST}"}}')
    assert 0 <= float(age["value"][1]) < 900
    (state,) = prometheus.query(f'external_dag_last_run_state{{dag_id="{INGEST}"}} == 1')
    assert state["metric"]["state"] == "success"
    alerts = [
        a for a in prometheus.alerts() if a["labels"]["alertname"] == "ExternalDagHeartbeatMissing"
    ]
    assert alerts == []

    airflow_instance.set_paused(INGEST, True)
    wait_for(
        f"external_dag_paused{{dag_id={INGEST}}} to turn 1",
        lambda: prometheus.query(f'external_dag_paused{{dag_id="{INGEST}"}} == 1'),
        timeout=30,
    )
