"""Active health probes against loopback servers: healthy, 5xx, hanging, refusing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from feedguard.core.catalog import HealthProbe
from feedguard.core.probes import probe
from feedguard.exporter.app import create_app

from .exporter_support import Providers, config_for, make_catalog, provider_server, value
from .support.services import free_port

SUCCESS = "external_provider_probe_success"
CODE = "external_provider_probe_http_status_code"
DURATION = "external_provider_probe_duration_seconds"
STREAK = "external_provider_probe_consecutive_successes"
UP = "external_exporter_collector_up"


@pytest.fixture
async def providers(aiohttp_server: Any) -> AsyncIterator[Providers]:
    async for item in provider_server(aiohttp_server):
        yield item


async def start(aiohttp_client: Any, redis_url: str, catalog: Any, **scrape: float) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(config_for(catalog, redis_url, **scrape)))
    return client


async def scrape(client: TestClient, **headers: str) -> str:
    # The client's own limit is far below the hanging provider's 30 s timeout:
    # a scrape not bounded by the deadline fails here instead of passing slowly.
    response = await client.get("/metrics", headers=headers, timeout=aiohttp.ClientTimeout(total=8))
    assert response.status == 200
    return await response.text()


async def test_healthy_failing_and_refusing_providers(
    aiohttp_client: Any, redis_url: str, providers: Providers
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/health"
    catalog = make_catalog(
        {
            "EIA": providers.probe("/ok"),
            "NOAA": providers.probe("/status/503"),
            "MISO": {"health_probe": {"url": closed}},
            # 401 is what a healthy API answers without a key: listed as expected.
            "ISO-NE": providers.probe("/status/401", method="HEAD", expected_status=[200, 401]),
            "NOPROBE": {"datasets": ["a"]},
        }
    )
    client = await start(aiohttp_client, redis_url, catalog)
    text = await scrape(client)

    assert (value(text, SUCCESS, provider="EIA"), value(text, CODE, provider="EIA")) == (1, 200)
    assert (value(text, SUCCESS, provider="NOAA"), value(text, CODE, provider="NOAA")) == (0, 503)
    assert (value(text, SUCCESS, provider="MISO"), value(text, CODE, provider="MISO")) == (0, 0)
    assert value(text, SUCCESS, provider="ISO-NE") == 1
    assert value(text, CODE, provider="ISO-NE") == 401
    assert value(text, SUCCESS, provider="NOPROBE") is None
    duration = value(text, DURATION, provider="EIA")
    assert duration is not None
    assert duration > 0
    assert value(text, UP, collector="probes") == 1
    # Probes were real requests, one per provider per scrape.
    assert providers.hits == {"/ok": 1, "/status/503": 1, "/status/401": 1}


async def test_hanging_provider_is_cut_at_the_scrape_deadline(
    aiohttp_client: Any, redis_url: str, providers: Providers
) -> None:
    catalog = make_catalog(
        {
            "EIA": providers.probe("/ok"),
            "NOAA": providers.probe("/hang", timeout_seconds=30),
        }
    )
    client = await start(aiohttp_client, redis_url, catalog, deadline_margin_seconds=0.5)
    started = time.monotonic()
    text = await scrape(client, **{"X-Prometheus-Scrape-Timeout-Seconds": "1"})
    elapsed = time.monotonic() - started

    # The hanging probe became a failed probe within the scrape, not a lost scrape.
    assert value(text, SUCCESS, provider="NOAA") == 0
    assert value(text, CODE, provider="NOAA") == 0
    assert value(text, SUCCESS, provider="EIA") == 1
    assert value(text, UP, collector="probes") == 1
    assert value(text, UP, collector="redis") == 1
    noaa_duration = value(text, DURATION, provider="NOAA")
    assert noaa_duration is not None
    # Bounded by the deadline (1 s less the 0.5 s margin), not its own 30 s timeout.
    assert noaa_duration < 1.0
    assert elapsed < 8  # generous: the client's own timeout would have fired anyway
    assert providers.hits["/hang"] == 1


async def test_probe_timeout_bounds_a_probe_without_a_header(
    aiohttp_client: Any, redis_url: str, providers: Providers
) -> None:
    catalog = make_catalog({"NOAA": providers.probe("/hang", timeout_seconds=0.3)})
    client = await start(aiohttp_client, redis_url, catalog)
    text = await scrape(client)  # default scrape timeout (10 s): the probe's own 0.3 s wins
    assert value(text, SUCCESS, provider="NOAA") == 0
    duration = value(text, DURATION, provider="NOAA")
    assert duration is not None
    assert duration < 5


async def test_consecutive_successes_count_and_reset(
    aiohttp_client: Any, redis_url: str, providers: Providers
) -> None:
    catalog = make_catalog({"EIA": providers.probe("/toggle")})
    client = await start(aiohttp_client, redis_url, catalog)

    streaks = []
    for status in (200, 200, 200, 500, 200, 200):
        providers.toggle_status = status
        text = await scrape(client)
        streaks.append(value(text, STREAK, provider="EIA"))
    assert streaks == [1, 2, 3, 0, 1, 2]


async def test_probes_disabled(aiohttp_client: Any, redis_url: str, providers: Providers) -> None:
    catalog = make_catalog({"EIA": providers.probe("/ok")})
    client: TestClient = await aiohttp_client(
        create_app(config_for(catalog, redis_url, probes=False))
    )
    text = await scrape(client)
    assert SUCCESS not in text
    assert value(text, UP, collector="probes") is None
    assert providers.hits == {}


async def test_probe_function_reports_instead_of_raising(providers: Providers) -> None:
    """The responder's recovery gate calls ``probe`` directly."""
    async with aiohttp.ClientSession() as session:
        ok = await probe(session, HealthProbe(url=providers.url("/ok")))
        failing = await probe(session, HealthProbe(url=providers.url("/status/502")))
        hanging = await probe(session, HealthProbe(url=providers.url("/hang")), budget_seconds=0.2)
        refused = await probe(session, HealthProbe(url=f"http://127.0.0.1:{free_port()}/"))
    assert (ok.success, ok.status_code, ok.error) == (True, 200, None)
    assert (failing.success, failing.status_code) == (False, 502)
    assert failing.error == "HTTP 502, expected 200"
    assert (hanging.success, hanging.status_code) == (False, 0)
    assert hanging.error is not None
    assert hanging.error.startswith("timeout after 0.20s")
    assert (refused.success, refused.status_code) == (False, 0)
    assert refused.error is not None
    assert "Connect" in refused.error
