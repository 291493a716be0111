"""POST /api/v1/lineage on a real exporter app and a real redis-server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient

from feedguard.core.schema import ConfigError
from feedguard.exporter.app import create_app
from feedguard.exporter.config import ExporterConfig, load_config
from feedguard.exporter.lineage import handler
from feedguard.exporter.lineage.settings import LineageSettings

from .conftest import make_catalog
from .exporter_support import config_for, value
from .support.openlineage import run_event

TOKEN = "lineage-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CATALOG = {
    "ISO-NE": {
        "datasets": ["lmp_day_ahead_hourly", "lmp_realtime_5min", "load_forecast"],
        "lineage": {
            "jobs": [
                {
                    "namespace": "airflow",
                    "name": "external_data_ingest",
                    "datasets": ["lmp_day_ahead_hourly", "lmp_realtime_5min"],
                }
            ],
            "outputs": [
                {
                    "namespace": "iceberg://lake",
                    "name": "external.isone_load",
                    "dataset": "load_forecast",
                }
            ],
        },
    },
    "MISO": {
        "datasets": ["lmp_realtime_5min"],
        "lineage": {"jobs": [{"namespace": "airflow", "name": "external_data_ingest"}]},
    },
}
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


def lineage_config(redis_url: str, **settings: Any) -> ExporterConfig:
    config = config_for(make_catalog(CATALOG), redis_url, probes=False)
    values: dict[str, Any] = {"enabled": True, "bearer_token": TOKEN, **settings}
    return config.model_copy(update={"lineage": LineageSettings(**values)})


@pytest.fixture
async def client(aiohttp_client: MakeClient, redis_url: str) -> Client:
    return await aiohttp_client(create_app(lineage_config(redis_url)))


async def post(client: Client, event: Any, headers: dict[str, str] = AUTH) -> tuple[int, Any]:
    response = await client.post("/api/v1/lineage", json=event, headers=headers)
    return response.status, await response.json()


def stored(r: redis.Redis, provider: str, dataset: str) -> float | None:
    raw = r.get(f"external:last_success:{provider}:{dataset}")
    return None if raw is None else float(raw)


async def metrics(client: Client) -> str:
    return await (await client.get("/metrics")).text()


async def test_complete_of_a_mapped_dag_records_the_conf_provider_datasets(
    client: Client, redis_client: redis.Redis
) -> None:
    at = time.time() - 60
    event = run_event("COMPLETE", "external_data_ingest", at, conf={"provider": "ISO-NE"})
    status, body = await post(client, event)
    assert status == 200, body
    assert body["result"] == "recorded"
    assert stored(redis_client, "ISO-NE", "lmp_day_ahead_hourly") == pytest.approx(at)
    assert stored(redis_client, "ISO-NE", "lmp_realtime_5min") == pytest.approx(at)
    # Only the datasets the job maps to, only for the provider the conf names.
    assert stored(redis_client, "ISO-NE", "load_forecast") is None
    assert stored(redis_client, "MISO", "lmp_realtime_5min") is None
    text = await metrics(client)
    assert (
        value(text, "external_lineage_events_total", event_type="COMPLETE", result="recorded") == 1
    )
    assert (
        value(
            text,
            "external_lineage_loads_total",
            provider="ISO-NE",
            dataset="lmp_realtime_5min",
            result="recorded",
        )
        == 1
    )


async def test_redelivered_and_older_completes_change_nothing(
    client: Client, redis_client: redis.Redis
) -> None:
    at = time.time() - 60
    event = run_event("COMPLETE", "external_data_ingest", at, conf={"provider": "MISO"})
    assert (await post(client, event))[1]["result"] == "recorded"
    status, body = await post(client, event)  # the transport retried
    assert (status, body["result"]) == (200, "kept")
    older = run_event("COMPLETE", "external_data_ingest", at - 600, conf={"provider": "MISO"})
    assert (await post(client, older))[1]["result"] == "kept"
    assert stored(redis_client, "MISO", "lmp_realtime_5min") == pytest.approx(at)
    newer = run_event("COMPLETE", "external_data_ingest", at + 30, conf={"provider": "MISO"})
    assert (await post(client, newer))[1]["result"] == "recorded"
    assert stored(redis_client, "MISO", "lmp_realtime_5min") == pytest.approx(at + 30)
    text = await metrics(client)
    assert value(text, "external_lineage_events_total", event_type="COMPLETE", result="kept") == 2


async def test_a_mapped_output_dataset_records_without_conf(
    client: Client, redis_client: redis.Redis
) -> None:
    at = time.time() - 5
    event = run_event(
        "COMPLETE",
        "isone_load_job.write",
        at,
        namespace="spark",
        outputs=[("iceberg://lake", "external.isone_load"), ("iceberg://lake", "other")],
        task=True,
    )
    status, body = await post(client, event)
    assert (status, body["result"]) == (200, "recorded")
    assert body["loads"] == [
        {"provider": "ISO-NE", "dataset": "load_forecast", "result": "recorded"}
    ]
    assert stored(redis_client, "ISO-NE", "load_forecast") == pytest.approx(at)


@pytest.mark.parametrize(
    "event",
    [
        # A job nobody mapped.
        run_event("COMPLETE", "some_other_dag", 1.0e9, conf={"provider": "ISO-NE"}),
        # A mapped job whose run does not name a provider...
        run_event("COMPLETE", "external_data_ingest", 1.0e9),
        # ... or names one the job is not mapped for, or one not in the catalog.
        run_event("COMPLETE", "external_data_ingest", 1.0e9, conf={"provider": "NOAA"}),
        run_event("COMPLETE", "external_data_ingest", 1.0e9, conf={"provider": 7}),
        # The right job in another namespace, or a task of it (a task is not the load).
        run_event(
            "COMPLETE", "external_data_ingest", 1.0e9, namespace="x", conf={"provider": "MISO"}
        ),
        run_event(
            "COMPLETE", "external_data_ingest.run", 1.0e9, conf={"provider": "MISO"}, task=True
        ),
    ],
)
async def test_unmatched_events_are_counted_and_never_written(
    client: Client, redis_client: redis.Redis, event: dict[str, Any]
) -> None:
    status, body = await post(client, event)
    assert (status, body["result"]) == (200, "unmatched")
    assert redis_client.dbsize() == 0
    text = await metrics(client)
    assert (
        value(text, "external_lineage_events_total", event_type="COMPLETE", result="unmatched") == 1
    )


async def test_start_and_dataset_events_are_ignored(
    client: Client, redis_client: redis.Redis
) -> None:
    start = run_event("START", "external_data_ingest", time.time(), conf={"provider": "MISO"})
    assert (await post(client, start))[1]["result"] == "ignored"
    dataset_event = {
        "eventTime": "2026-12-01T00:00:00Z",
        "producer": "https://example.com/p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "iceberg://lake", "name": "external.isone_load"},
    }
    assert (await post(client, dataset_event))[1]["result"] == "ignored"
    assert redis_client.dbsize() == 0


async def test_fields_the_spec_leaves_open_are_accepted(
    client: Client, redis_client: redis.Redis
) -> None:
    event = run_event(
        "COMPLETE", "external_data_ingest", time.time() - 5, conf={"provider": "MISO"}
    )
    event["extraField"] = {"any": "thing"}
    event["job"]["facets"] = {"jobType": {"_producer": "p", "integration": "AIRFLOW"}}
    event["inputs"] = [{"namespace": "s3://raw", "name": "x", "inputFacets": {"f": {}}}]
    event["outputs"] = [{"namespace": "s3://out", "name": "y", "outputFacets": {}}]
    status, body = await post(client, event)
    assert (status, body["result"]) == (200, "recorded")


def failure_document(r: redis.Redis, provider: str) -> dict[str, Any]:
    return dict(json.loads(r.get(f"feedguard:lineage:last_failure:{provider}") or "null"))


async def test_a_failing_task_is_counted_once_with_its_message(
    client: Client, redis_client: redis.Redis
) -> None:
    at = time.time() - 30
    conf = {"provider": "ISO-NE"}
    fail = run_event(
        "FAIL",
        "external_data_ingest.run",
        at,
        conf=conf,
        task=True,
        error="provider answered 503",
        dag_run_id="run-a",
    )
    status, body = await post(client, fail)
    assert (status, body) == (
        200,
        {"status": "accepted", "result": "failure", "provider": "ISO-NE"},
    )
    assert (await post(client, fail))[1]["result"] == "duplicate"
    document = failure_document(redis_client, "ISO-NE")
    assert document["message"] == "provider answered 503"
    assert document["job"] == "external_data_ingest.run"
    assert document["event_time"] == pytest.approx(at)
    # The DAG's own FAIL of the same run comes after with a vaguer message: the
    # first failure of a run is its cause and stays.
    dag_fail = run_event(
        "FAIL", "external_data_ingest", at + 1, conf=conf, error="task_failure", dag_run_id="run-a"
    )
    assert (await post(client, dag_fail))[1]["result"] == "failure"
    assert failure_document(redis_client, "ISO-NE")["message"] == "provider answered 503"
    # An older run's failure arriving late does not replace it either...
    older = run_event(
        "ABORT", "external_data_ingest", at - 100, conf=conf, error="old", dag_run_id="run-0"
    )
    assert (await post(client, older))[1]["result"] == "failure"
    assert failure_document(redis_client, "ISO-NE")["message"] == "provider answered 503"
    # ... a newer run's does.
    newer = run_event(
        "FAIL", "external_data_ingest", at + 100, conf=conf, error="new", dag_run_id="run-b"
    )
    assert (await post(client, newer))[1]["result"] == "failure"
    assert failure_document(redis_client, "ISO-NE")["message"] == "new"
    text = await metrics(client)
    labels = {"lineage_namespace": "airflow", "event_type": "FAIL"}
    task_job = {"lineage_job": "external_data_ingest.run", **labels}
    dag_job = {"lineage_job": "external_data_ingest", **labels}
    assert value(text, "external_lineage_job_failures_total", **task_job) == 1
    assert value(text, "external_lineage_job_failures_total", **dag_job) == 2
    assert value(text, "external_lineage_events_total", event_type="FAIL", result="duplicate") == 1
    # No last success was touched by any of it.
    assert redis_client.keys("external:last_success:*") == []


async def test_a_failure_of_an_unmapped_job_is_unmatched(
    client: Client, redis_client: redis.Redis
) -> None:
    fail = run_event("FAIL", "other_dag.run", time.time(), conf={"provider": "ISO-NE"}, error="x")
    assert (await post(client, fail))[1]["result"] == "unmatched"
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
async def test_wrong_credentials_are_refused(
    client: Client, redis_client: redis.Redis, headers: dict[str, str]
) -> None:
    event = run_event("COMPLETE", "external_data_ingest", time.time(), conf={"provider": "MISO"})
    response = await client.post("/api/v1/lineage", json=event, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert redis_client.dbsize() == 0
    text = await metrics(client)
    assert value(text, "external_lineage_requests_total", result="unauthorized") == 1


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


GOOD = run_event("COMPLETE", "external_data_ingest", 1.7e9, conf={"provider": "MISO"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "invalid JSON"),
        ([GOOD], "<root>: expected a JSON object"),
        (_without(GOOD, "eventTime"), '<root>: "eventTime" is a required property'),
        ({**GOOD, "eventType": "DONE"}, "eventType: "),
        ({**GOOD, "run": {"facets": {}}}, 'run: "runId" is a required property'),
        ({**GOOD, "job": {"namespace": 1, "name": "x"}}, "job.namespace: 1 is not of type"),
        ({**GOOD, "outputs": [{"name": "t"}]}, 'outputs[0]: "namespace" is a required'),
        ({**GOOD, "run": {**GOOD["run"], "facets": {"x": 1}}}, "run.facets.x: 1 is not of type"),
        (
            {**GOOD, "inputs": [{"namespace": "n", "name": "t", "inputFacets": []}]},
            "inputs[0].inputFacets: [] is not of type",
        ),
        (_without(_without(GOOD, "run"), "job"), '<root>: an OpenLineage event has a "run"'),
        ({**GOOD, "eventTime": "yesterday"}, "eventTime: not an ISO 8601 date-time"),
        ({**GOOD, "eventTime": "2026-12-01T00:00:00"}, "eventTime: needs a UTC offset"),
        ({**GOOD, "eventTime": "2999-01-01T00:00:00Z"}, "in the future"),
    ],
)
async def test_invalid_events_are_refused_naming_the_field(
    client: Client, redis_client: redis.Redis, body: Any, message: str
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(
        "/api/v1/lineage", data=data, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert message in error, error
    assert redis_client.dbsize() == 0


async def test_a_body_over_the_limit_is_refused(
    aiohttp_client: MakeClient, redis_url: str, redis_client: redis.Redis
) -> None:
    client = await aiohttp_client(create_app(lineage_config(redis_url, max_body_bytes=2000)))
    event = run_event("COMPLETE", "external_data_ingest", time.time(), conf={"provider": "MISO"})
    event["run"]["facets"]["airflowDagRun"]["padding"] = "x" * 3000
    status, body = await post(client, event)
    assert status == 413
    assert body == {"error": "body larger than 2000 bytes"}
    assert redis_client.dbsize() == 0


async def test_redis_down_answers_503(aiohttp_client: MakeClient) -> None:
    config = lineage_config("redis://127.0.0.1:1/0")
    client = await aiohttp_client(create_app(config))
    event = run_event("COMPLETE", "external_data_ingest", time.time(), conf={"provider": "MISO"})
    status, body = await post(client, event)
    assert (status, body) == (503, {"error": "redis unavailable, retry later"})


async def test_off_by_default_there_is_no_endpoint(
    aiohttp_client: MakeClient, redis_url: str
) -> None:
    config = config_for(make_catalog(CATALOG), redis_url, probes=False)
    client = await aiohttp_client(create_app(config))
    response = await client.post("/api/v1/lineage", json={}, headers=AUTH)
    assert response.status == 404
    assert "external_lineage" not in await metrics(client)


def test_enabled_without_a_token_is_a_config_error(tmp_path: Path) -> None:
    settings = tmp_path / "exporter.yml"
    empty = tmp_path / "token"
    empty.write_text("\n")
    settings.write_text("catalog: {providers: [{name: EIA}]}\nlineage: {enabled: true}\n")
    with pytest.raises(ConfigError) as no_token:
        load_config(settings, environ={})
    assert no_token.value.errors == [
        f"{settings}: lineage.bearer_token: required when lineage.enabled is true: set "
        "FEEDGUARD_LINEAGE_BEARER_TOKEN or lineage.bearer_token_file"
    ]
    with pytest.raises(ConfigError) as empty_file:
        load_config(settings, environ={"FEEDGUARD_LINEAGE_BEARER_TOKEN_FILE": str(empty)})
    assert empty_file.value.errors == [f"{empty}: lineage.bearer_token: must not be empty"]
    config = load_config(settings, environ={"FEEDGUARD_LINEAGE_BEARER_TOKEN": "s3cret"})
    assert config.lineage.read_token() == "s3cret"


def test_catalog_lineage_mapping_must_name_the_providers_datasets() -> None:
    with pytest.raises(ConfigError) as caught:
        make_catalog(
            {
                "EIA": {
                    "datasets": ["a"],
                    "lineage": {
                        "jobs": [{"namespace": "airflow", "name": "dag", "datasets": ["b"]}],
                        "outputs": [{"namespace": "n", "name": "t", "dataset": "c"}],
                    },
                }
            }
        )
    assert caught.value.errors == [
        "<test>: providers[0].lineage.jobs[0].datasets: not datasets of this provider: ['b']",
        "<test>: providers[0].lineage.outputs[0].dataset: 'c' is not a dataset of this provider",
    ]


async def test_a_slow_body_is_cut_off_with_408(
    aiohttp_client: MakeClient,
    redis_url: str,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handler, "BODY_TIMEOUT_SECONDS", 0.5)
    client = await aiohttp_client(create_app(lineage_config(redis_url)))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(
            b"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            + b'{"eventType": '
        )
        await writer.drain()
        async with asyncio.timeout(30):  # a server that never cuts it off fails here
            answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert b"body not received within 0.5 s" in answer
    assert redis_client.dbsize() == 0
    assert value(await metrics(client), "external_lineage_requests_total", result="timeout") == 1
