"""The OpenLineage path on the real Airflow 3: its provider posts to a real feedguard-exporter.

The session's Airflow runs with apache-airflow-providers-openlineage and
``AIRFLOW__OPENLINEAGE__TRANSPORT`` pointing at a loopback port reserved for
it (tests/support/airflow.py); this module serves that port with
``feedguard-exporter`` (a subprocess, lineage on) and a real redis-server.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import redis

from .exporter_support import value
from .support.airflow import LINEAGE_NAMESPACE, AirflowInstance, require_openlineage_provider
from .support.prometheus import exporter_command, wait_for
from .support.services import Service, running

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REDIS_DB = 6  # apart from the per-test FLUSHDB of database 0
INGEST = "external_data_ingest"
FAILING = "external_failing"
ISO_NE = ["lmp_realtime_5min", "lmp_day_ahead_hourly"]


@pytest.fixture(scope="module", autouse=True)
def _provider_installed() -> None:
    # Before the session's Airflow starts: a venv from before the provider fails at once.
    require_openlineage_provider()


@pytest.fixture(scope="module")
def exporter(
    airflow_instance: AirflowInstance,
    redis_service: Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, redis.Redis]]:
    work = tmp_path_factory.mktemp("lineage-airflow")
    redis_url = f"redis://127.0.0.1:{redis_service.port}/{REDIS_DB}"
    mapping = {"jobs": [{"namespace": LINEAGE_NAMESPACE, "name": INGEST}]}
    failing = {"namespace": LINEAGE_NAMESPACE, "name": FAILING}
    catalog = {
        "providers": [
            {
                "name": "ISO-NE",
                "datasets": ISO_NE,
                "lineage": {"jobs": [*mapping["jobs"], failing]},
            },
            {"name": "MISO", "datasets": ["fuel_mix_5min"], "lineage": mapping},
        ]
    }
    token_file = work / "lineage-token"
    token_file.write_text(airflow_instance.lineage_token)
    config = {
        "catalog": catalog,
        "redis": {"url": redis_url},
        "probes": {"enabled": False},
        "lineage": {"enabled": True, "bearer_token_file": str(token_file)},
        "log": {"format": "json"},
    }
    port = airflow_instance.lineage_port
    argv, env = exporter_command(work, config, port)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        with running("feedguard-exporter-lineage", argv, port, work, env=env):
            yield f"http://127.0.0.1:{port}", client
    finally:
        client.flushdb()
        client.close()


def _metrics(base_url: str) -> str:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _run(
    airflow: AirflowInstance, dag_id: str, run_id: str, conf: dict[str, Any]
) -> dict[str, Any]:
    airflow.clear_runs(dag_id)
    airflow.set_paused(dag_id, False)
    try:
        airflow.trigger(dag_id, run_id, conf=conf)
        return airflow.wait_for_run(dag_id, run_id)
    finally:
        airflow.set_paused(dag_id, True)


def test_a_dag_run_with_provider_conf_records_its_datasets(
    airflow_instance: AirflowInstance, exporter: tuple[str, redis.Redis]
) -> None:
    base_url, client = exporter
    run = _run(airflow_instance, INGEST, "lineage-iso-ne-1", {"provider": "ISO-NE"})
    assert run["state"] == "success"
    keys = [f"external:last_success:ISO-NE:{dataset}" for dataset in ISO_NE]
    stored = wait_for(
        "the DAG's COMPLETE event to record the ISO-NE datasets",
        lambda: all(client.mget(keys)) and client.mget(keys),
        timeout=60,
    )
    # eventTime of the DAG-level COMPLETE is the run's end_date.
    for raw in stored:
        assert float(raw) == pytest.approx(_epoch(run["end_date"]), abs=0.001)
    # The conf named ISO-NE: MISO, mapped to the same DAG, got nothing.
    assert client.get("external:last_success:MISO:fuel_mix_5min") is None
    text = _metrics(base_url)
    assert value(text, "external_lineage_requests_total", result="invalid") == 0
    assert value(text, "external_lineage_requests_total", result="unauthorized") == 0
    assert value(text, "external_lineage_events_total", event_type="COMPLETE", result="recorded")


def test_a_failing_task_is_counted_with_its_message(
    airflow_instance: AirflowInstance, exporter: tuple[str, redis.Redis]
) -> None:
    base_url, client = exporter
    keys = [f"external:last_success:ISO-NE:{dataset}" for dataset in ISO_NE]
    before = client.mget(keys)
    run = _run(airflow_instance, FAILING, "lineage-failing-1", {"provider": "ISO-NE"})
    assert run["state"] == "failed"
    labels = {
        "lineage_namespace": LINEAGE_NAMESPACE,
        "lineage_job": f"{FAILING}.run",
        "event_type": "FAIL",
    }
    wait_for(
        "the task's FAIL event to be counted",
        lambda: value(_metrics(base_url), "external_lineage_job_failures_total", **labels) == 1,
        timeout=60,
    )
    document = json.loads(client.get("feedguard:lineage:last_failure:ISO-NE") or "null")
    assert document["provider"] == "ISO-NE"
    assert document["job"].startswith(FAILING)
    assert "failing on purpose" in (document["message"] or "")
    # A failure is never a load.
    assert client.mget(keys) == before
