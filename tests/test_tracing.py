"""OpenTelemetry traces: one trace per notification, exported over OTLP/HTTP to a local
receiver that decodes the protobuf (tests/support/otlp.py).

The responder runs its real actions and notifier against the local stand-ins
(Kubernetes, runtime-config, the Airflow 2 API, Slack's incoming webhook), so the
HTTP and Kubernetes calls are the real clients' calls.  Spans are read after the
app stops: its shutdown flushes the batch processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from feedguard.core.log import configure_logging, trace_id_processor
from feedguard.core.schema import ConfigError, load_model
from feedguard.core.tracing import Tracing, TracingSettings
from feedguard.responder import appkeys

from .conftest import make_catalog
from .support.fake_airflow2 import FakeAirflow2
from .support.fake_http import serve_app
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.otlp import OtlpReceiver, ReceivedSpan
from .support.responder import (
    FakeClock,
    alert,
    notification,
    responder_config,
    start_responder,
)

NS, CM = "aurum-dev", "aurum-api-config"
INGEST = "external_data_ingest"
KUBE_TOKEN = "kube-sa-token-0123456789"
RUNTIME_TOKEN = "runtime-token-0123456789"
AIRFLOW_PASSWORD = "airflow-password-0123"
EXPORT_TOKEN = "collector-token-0123456789"
SECRETS = (KUBE_TOKEN, RUNTIME_TOKEN, AIRFLOW_PASSWORD, EXPORT_TOKEN, "fake-webhook-secret")
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [
            {"action": "throttle_api"},
            {"action": "pause_dags"},
            {"action": "read_cache"},
        ],
        "resolved": [{"revert": "all"}],
    }
]


@dataclasses.dataclass
class World:
    receiver: OtlpReceiver
    endpoint: str
    kube: FakeKubernetes
    runtime: FakeRuntimeConfig
    airflow: FakeAirflow2
    slack: FakeSlack
    urls: dict[str, str]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    receiver = OtlpReceiver()
    kube = FakeKubernetes()
    kube.grant(KUBE_TOKEN, names=[(NS, CM)])
    kube.put(NS, CM, {"AURUM_API_RATE_LIMIT_RPS": "200"})
    runtime = FakeRuntimeConfig.with_features(["external_read_cache"], token=RUNTIME_TOKEN)
    airflow = FakeAirflow2(username="admin", password=AIRFLOW_PASSWORD)
    airflow.add_dag(INGEST)
    async with contextlib.AsyncExitStack() as stack:
        otlp_url = await stack.enter_async_context(receiver.serve())
        urls = {
            "kube": await stack.enter_async_context(kube.serve()),
            "runtime": await stack.enter_async_context(runtime.serve()),
            "airflow": await stack.enter_async_context(serve_app(airflow.app())),
        }
        slack = await stack.enter_async_context(running_fake_slack())
        yield World(receiver, f"{otlp_url}/v1/traces", kube, runtime, airflow, slack, urls)


def _config(
    tmp_path: Path, world: World, store: dict[str, Any] | None = None, **tracing: Any
) -> Any:
    headers = tmp_path / "otlp-headers"
    headers.write_text(f"Authorization=Bearer%20{EXPORT_TOKEN}\n")
    return responder_config(
        tmp_path,
        **(store or {}),
        catalog=make_catalog({"ISO-NE": {"datasets": ["lmp"], "dags": [INGEST]}}),
        playbooks=PLAYBOOKS,
        actions={
            "airflow": {
                "base_url": world.urls["airflow"],
                "version": "2",
                "username": "admin",
                "password": AIRFLOW_PASSWORD,
            },
            "kubernetes": {
                "host": world.urls["kube"],
                "token": KUBE_TOKEN,
                "namespace": NS,
                "configmap": CM,
            },
            "runtime_config": {"base_url": world.urls["runtime"], "token": RUNTIME_TOKEN},
        },
        notes={"webhook_url": world.slack.webhook_url},
        tracing={
            "enabled": True,
            "endpoint": world.endpoint,
            "sampling_ratio": 1.0,
            "headers_file": str(headers),
            **tracing,
        },
    )


def _only(spans: list[ReceivedSpan]) -> ReceivedSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def test_one_trace_per_notification(
    tmp_path: Path, world: World, store_options: dict[str, Any]
) -> None:
    """On both stores: the trace context crosses the inbox and the incident document."""
    config = _config(tmp_path, world, store_options)
    clock = FakeClock(datetime.now(UTC).timestamp())
    async with start_responder(config, clock=clock) as r:
        await r.post(notification([alert("ISO-NE", starts_at=clock.now - 60)]))
        await r.settle()
        incident = await r.incident("ISO-NE")
    spans = world.receiver.spans
    assert spans, "nothing exported"
    assert {s.resource["service.name"] for s in spans} == {"feedguard-responder"}
    # The collector's token went as a header, from the headers file.
    assert all(h.get("Authorization") == f"Bearer {EXPORT_TOKEN}" for h in world.receiver.headers)

    root = _only(world.receiver.named("POST /webhook/alertmanager"))
    assert root.parent_span_id is None
    assert root.kind == SERVER
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["feedguard.alerts.new"] == 1
    # The start-up client checks have a trace each (tests/test_client_warmup.py); the
    # notification's spans are all in one.
    checks = {s.trace_id for s in spans if s.name.startswith("client check ")}
    assert checks, "the start-up checks are traced too"
    notified = {s.trace_id for s in spans} - checks
    assert notified == {root.trace_id}, "one trace per notification"

    update = _only(world.receiver.named("incident update"))
    assert update.parent_span_id == root.span_id
    assert update.attributes["feedguard.incident_id"] == incident["id"]
    assert update.attributes["feedguard.provider"] == "ISO-NE"

    steps = [s for s in world.receiver.children(update) if s.name.startswith("step ")]
    assert sorted(s.name for s in steps) == [
        "step pause_dags",
        "step read_cache",
        "step throttle_api",
    ]
    by_name = {s.name: s for s in steps}
    for step in steps:
        assert step.attributes["feedguard.step.ok"] is True
        assert step.attributes["feedguard.incident_id"] == incident["id"]

    kube_calls = world.receiver.children(by_name["step throttle_api"])
    assert sorted(s.name for s in kube_calls) == [
        "kubernetes GET configmap",
        "kubernetes PATCH configmap",
    ]
    assert all(s.kind == CLIENT for s in kube_calls)
    assert all(s.attributes["k8s.namespace.name"] == NS for s in kube_calls)

    airflow_calls = world.receiver.children(by_name["step pause_dags"])
    assert airflow_calls
    assert all(s.kind == CLIENT for s in airflow_calls)
    assert {s.attributes.get("http.method") for s in airflow_calls} >= {"GET", "PATCH"}
    assert all(world.urls["airflow"] in s.attributes["http.url"] for s in airflow_calls)

    runtime_calls = world.receiver.children(by_name["step read_cache"])
    assert {s.attributes.get("http.method") for s in runtime_calls} >= {"GET", "POST"}
    assert all(world.urls["runtime"] in s.attributes["http.url"] for s in runtime_calls)

    note = _only(world.receiver.named("note initial"))
    assert note.parent_span_id == update.span_id
    slack_call = _only(world.receiver.children(note))
    assert slack_call.attributes["http.status_code"] == 200
    assert slack_call.attributes["http.url"].startswith(f"{world.slack.url}/services/")

    # No secret in any attribute: tokens, passwords, the webhook URL's secret path.
    exported = json.dumps([dataclasses.asdict(s) for s in spans])
    for secret in SECRETS:
        assert secret not in exported, secret

    # The incident's timeline carries the trace it happened in.
    traced = [e for e in incident["timeline"] if "trace_id" in e]
    assert traced, incident["timeline"]
    assert {e["trace_id"] for e in traced} == {root.trace_id}
    events = {e["event"] for e in traced}
    assert "incident opened" in events
    assert any(e.startswith("playbook provider-down") for e in events)
    assert "step applied" in events
    assert "note posted: initial:0" in events


async def test_unsampled_notification_exports_nothing(tmp_path: Path, world: World) -> None:
    """Sampling 0: the notification, its steps and calls follow its decision (no
    orphan traces from the steps); timeline entries carry no trace_id."""
    config = _config(tmp_path, world, sampling_ratio=0.0)
    clock = FakeClock(datetime.now(UTC).timestamp())
    async with start_responder(config, clock=clock) as r:
        await r.post(notification([alert("ISO-NE", starts_at=clock.now - 60)]))
        await r.settle()
        incident = await r.incident("ISO-NE")
    assert world.kube.patches(), "the steps ran"
    assert world.receiver.spans == []
    assert all("trace_id" not in e for e in incident["timeline"])


async def test_off_by_default_exports_nothing(tmp_path: Path, world: World) -> None:
    config = _config(tmp_path, world, enabled=False)
    assert TracingSettings().enabled is False
    clock = FakeClock(datetime.now(UTC).timestamp())
    async with start_responder(config, clock=clock) as r:
        tracing = r.app[appkeys.TRACING]
        assert not tracing.enabled
        assert tracing.trace_configs() == []
        await r.post(notification([alert("ISO-NE", starts_at=clock.now - 60)]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        entries = await r.engine.store.inbox_peek(10)
    assert world.kube.patches(), "the steps ran"
    assert world.receiver.requests == 0
    assert all("trace_id" not in e for e in incident["timeline"])
    assert entries == []


async def test_log_lines_carry_the_trace_id_inside_a_sampled_span(world: World) -> None:
    settings = TracingSettings(enabled=True, endpoint=world.endpoint, sampling_ratio=1.0)
    tracing = Tracing.start(settings, "test", "0")
    try:
        processors = [structlog.contextvars.merge_contextvars, trace_id_processor()]
        with structlog.testing.capture_logs(processors=processors) as logs:
            structlog.get_logger().info("outside")
            with tracing.span("work") as span:
                structlog.get_logger().info("inside")
                trace_id = f"{span.get_span_context().trace_id:032x}"
        assert "trace_id" not in logs[0]
        assert logs[1]["trace_id"] == trace_id
    finally:
        tracing.shutdown()


@pytest.mark.usefixtures("restore_logging")
async def test_service_log_lines_carry_the_trace_id(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """As serve() sets logging up with tracing on: structlog and stdlib lines written
    inside a sampled span carry its trace_id, others none."""
    configure_logging("info", "json", trace_ids=True)
    settings = TracingSettings(enabled=True, endpoint=world.endpoint, sampling_ratio=1.0)
    tracing = Tracing.start(settings, "test", "0")
    try:
        structlog.get_logger("t").info("before")
        with tracing.span("work") as span:
            structlog.get_logger("t").info("inside")
            logging.getLogger("aiohttp.client").warning("third-party inside")
            trace_id = f"{span.get_span_context().trace_id:032x}"
        out = capsys.readouterr().out
    finally:
        await asyncio.to_thread(tracing.shutdown)
    lines = {e["event"]: e for e in map(json.loads, out.splitlines())}
    assert "trace_id" not in lines["before"]
    assert lines["inside"]["trace_id"] == trace_id
    assert lines["third-party inside"]["trace_id"] == trace_id


async def test_http_span_urls_lose_credentials(world: World) -> None:
    """The aiohttp child spans record the URL without userinfo or known secrets."""
    settings = TracingSettings(enabled=True, endpoint=world.endpoint, sampling_ratio=1.0)
    tracing = Tracing.start(settings, "test", "0")
    host = world.urls["runtime"].removeprefix("http://")
    try:
        async with aiohttp.ClientSession(trace_configs=tracing.trace_configs()) as session:
            with tracing.span("parent"):
                url = f"http://probe:url-password-0123@{host}/runtime-config/v1/features/x"
                async with session.get(url) as response:
                    assert response.status == 401
    finally:
        await asyncio.to_thread(tracing.shutdown)
    call = _only([s for s in world.receiver.spans if s.name == "GET"])
    assert "url-password-0123" not in json.dumps(call.attributes)
    assert call.attributes["http.url"].endswith("/runtime-config/v1/features/x")


def test_export_headers_errors_name_the_pair_not_the_value(tmp_path: Path) -> None:
    headers = tmp_path / "headers"
    headers.write_text("Authorization=Bearer%20abc,not-a-pair-secretvalue\n")
    settings = load_model(
        TracingSettings, {"enabled": True, "headers_file": str(headers)}, "<test>"
    )
    with pytest.raises(ConfigError) as raised:
        settings.read_headers()
    assert raised.value.errors == [f"{headers}: tracing.headers: pair 1: expected name=value"]
    assert "secretvalue" not in str(raised.value.errors)


def test_sampling_ratio_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        load_model(TracingSettings, {"sampling_ratio": 1.5}, "responder.yml")
    assert any("sampling_ratio" in line for line in raised.value.errors)
