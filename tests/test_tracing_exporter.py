"""The exporter's traces: one per scrape (a span per collector, the probes' HTTP calls
as their children), exported over OTLP/HTTP to the local receiver; none when off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from feedguard.core.tracing import TracingSettings
from feedguard.exporter.app import create_app

from .exporter_support import Providers, config_for, make_catalog, provider_server
from .support.otlp import OtlpReceiver

PROBE_PASSWORD = "probe-password-0123"
SERVER, CLIENT = 2, 3


@pytest.fixture
async def providers(aiohttp_server: Any) -> AsyncIterator[Providers]:
    async for item in provider_server(aiohttp_server):
        yield item


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[OtlpReceiver, str]]:
    found = OtlpReceiver()
    async with found.serve() as url:
        yield found, f"{url}/v1/traces"


async def scrape_once(redis_url: str, providers: Providers, endpoint: str, on: bool) -> None:
    """One scrape of an exporter probing two providers (one URL with a password)."""
    ok = providers.url("/ok").replace("http://", f"http://probe:{PROBE_PASSWORD}@")
    catalog = make_catalog(
        {"EIA": {"health_probe": {"url": ok}}, "NOAA": providers.probe("/status/503")}
    )
    tracing = TracingSettings(enabled=on, endpoint=endpoint, sampling_ratio=1.0)
    config = config_for(catalog, redis_url).model_copy(update={"tracing": tracing})
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 200
    # Leaving the client stopped the app, whose shutdown flushed the spans.
    assert providers.hits == {"/ok": 1, "/status/503": 1}


async def test_one_trace_per_scrape(
    redis_url: str, providers: Providers, receiver: tuple[OtlpReceiver, str]
) -> None:
    otlp, endpoint = receiver
    await scrape_once(redis_url, providers, endpoint, on=True)

    root = next(s for s in otlp.spans if s.name == "GET /metrics")
    assert root.parent_span_id is None
    assert root.kind == SERVER
    assert {s.resource["service.name"] for s in otlp.spans} == {"feedguard-exporter"}
    assert {s.trace_id for s in otlp.spans} == {root.trace_id}
    collectors = {s.name: s for s in otlp.children(root)}
    assert set(collectors) == {"collect redis", "collect probes"}
    calls = otlp.children(collectors["collect probes"])
    assert sorted(s.attributes["http.status_code"] for s in calls) == [200, 503]
    assert all(s.kind == CLIENT for s in calls)
    assert PROBE_PASSWORD not in json.dumps([s.attributes for s in otlp.spans])


async def test_off_exports_nothing(
    redis_url: str, providers: Providers, receiver: tuple[OtlpReceiver, str]
) -> None:
    otlp, endpoint = receiver
    await scrape_once(redis_url, providers, endpoint, on=False)
    assert otlp.requests == 0
