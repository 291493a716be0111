"""/metrics from a real redis-server, /healthz, /readyz, the landing page, promtool lint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient

from feedguard.exporter.app import create_app
from feedguard.exporter.config import ExporterConfig

from .exporter_support import Providers, config_for, make_catalog, provider_server, value
from .support.services import free_port, require_binary

LAST = "external_data_last_success_timestamp"
RECORDED = "external_data_last_success_recorded"
STATUS = "external_provider_status"
UP = "external_exporter_collector_up"


@pytest.fixture
async def providers(aiohttp_server: Any) -> AsyncIterator[Providers]:
    async for item in provider_server(aiohttp_server):
        yield item


def two_providers(providers: Providers) -> Any:
    return make_catalog(
        {
            "EIA": {"datasets": ["rto", "fuel"], **providers.probe("/ok")},
            "NOAA": {"datasets": ["ghcnd"], **providers.probe("/status/503")},
            "OLD": {"enabled": False, "datasets": ["gone"], **providers.probe("/ok")},
        }
    )


async def scrape(client: TestClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def exporter(aiohttp_client: Any, config: ExporterConfig) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(config))
    return client


async def test_freshness_for_every_catalog_dataset(
    aiohttp_client: Any, redis_url: str, redis_client: redis.Redis, providers: Providers
) -> None:
    redis_client.set("external:last_success:EIA:rto", "1700000000.25")
    redis_client.set("external:last_success:OLD:gone", "1700000000")
    client = await exporter(aiohttp_client, config_for(two_providers(providers), redis_url))
    text = await scrape(client)

    assert value(text, LAST, provider="EIA", dataset="rto") == 1700000000.25
    assert value(text, RECORDED, provider="EIA", dataset="rto") == 1.0
    # No key yet: no timestamp sample, and the dataset is still visible.
    assert value(text, LAST, provider="EIA", dataset="fuel") is None
    assert value(text, RECORDED, provider="EIA", dataset="fuel") == 0.0
    assert value(text, RECORDED, provider="NOAA", dataset="ghcnd") == 0.0
    # A disabled provider publishes nothing, whatever Redis holds.
    assert "OLD" not in text
    assert value(text, UP, collector="redis") == 1.0
    assert value(text, "external_provider_freshness_sla_seconds", provider="EIA") == 900.0


async def test_one_mget_per_scrape(
    aiohttp_client: Any, redis_url: str, redis_client: redis.Redis, providers: Providers
) -> None:
    redis_client.set("external:last_success:EIA:rto", "1700000000")
    client = await exporter(
        aiohttp_client, config_for(two_providers(providers), redis_url, probes=False)
    )
    await scrape(client)  # connects (HELLO, CLIENT SETINFO) before the counted scrape

    redis_client.config_resetstat()
    await scrape(client)
    stats = redis_client.info("commandstats")

    by_command = {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}
    ours = {"info", "config|resetstat"}
    assert {c: n for c, n in by_command.items() if c not in ours} == {"mget": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"status": "down", "checked_at": 1700000000}', "down"),
        ('{"status": "Degraded"}', "degraded"),
        ("up", "up"),
        ("DOWN\n", "down"),
        ('"up"', "up"),
        ("{not json", "unknown"),
        ('{"status": "sideways"}', "unknown"),
        ('["up"]', "unknown"),
        ("", "unknown"),
        ("\xff\xfe", "unknown"),
    ],
)
async def test_provider_status_json_bare_or_malformed(
    aiohttp_client: Any,
    redis_url: str,
    redis_client: redis.Redis,
    providers: Providers,
    raw: str,
    expected: str,
) -> None:
    redis_client.set("external:provider_status:EIA", raw.encode("latin-1"))
    client = await exporter(
        aiohttp_client, config_for(two_providers(providers), redis_url, probes=False)
    )
    text = await scrape(client)

    for status in ("up", "degraded", "down", "unknown"):
        want = 1.0 if status == expected else 0.0
        assert value(text, STATUS, provider="EIA", status=status) == want, status
    # No key at all: unknown, not an error.
    assert value(text, STATUS, provider="NOAA", status="unknown") == 1.0
    assert value(text, UP, collector="redis") == 1.0


async def test_checked_at_published_when_the_status_says(
    aiohttp_client: Any, redis_url: str, redis_client: redis.Redis, providers: Providers
) -> None:
    redis_client.set("external:provider_status:EIA", '{"status": "up", "checked_at": 17.5}')
    redis_client.set("external:provider_status:NOAA", '{"status": "up", "checked_at": NaN}')
    client = await exporter(
        aiohttp_client, config_for(two_providers(providers), redis_url, probes=False)
    )
    text = await scrape(client)
    name = "external_provider_status_checked_at_timestamp"
    assert value(text, name, provider="EIA") == 17.5
    assert value(text, name, provider="NOAA") is None


@pytest.mark.parametrize("raw", ["yesterday", "-5", "inf", "nan", ""])
async def test_malformed_timestamp_counts_as_not_recorded(
    aiohttp_client: Any,
    redis_url: str,
    redis_client: redis.Redis,
    providers: Providers,
    raw: str,
) -> None:
    redis_client.set("external:last_success:EIA:rto", raw)
    redis_client.set("external:last_success:EIA:fuel", "1700000000")
    client = await exporter(
        aiohttp_client, config_for(two_providers(providers), redis_url, probes=False)
    )
    text = await scrape(client)
    assert value(text, LAST, provider="EIA", dataset="rto") is None
    assert value(text, RECORDED, provider="EIA", dataset="rto") == 0.0
    assert value(text, LAST, provider="EIA", dataset="fuel") == 1700000000.0
    assert value(text, UP, collector="redis") == 1.0


async def test_redis_down_still_serves_probes(aiohttp_client: Any, providers: Providers) -> None:
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    client = await exporter(aiohttp_client, config_for(two_providers(providers), nothing_there))
    text = await scrape(client)

    assert value(text, UP, collector="redis") == 0.0
    assert value(text, UP, collector="probes") == 1.0
    assert value(text, "external_provider_probe_success", provider="EIA") == 1.0
    assert value(text, "external_provider_probe_success", provider="NOAA") == 0.0
    # No freshness at all rather than made-up values: the alert on a missing
    # metric (and collector_up) tell the story.
    assert LAST + "{" not in text
    assert STATUS + "{" not in text

    ready = await client.get("/readyz")
    assert ready.status == 503
    body = await ready.json()
    assert body["status"] == "unavailable"
    assert "ConnectionError" in body["redis"]
    assert (await client.get("/healthz")).status == 200


async def test_health_readiness_and_landing_page(
    aiohttp_client: Any, redis_url: str, providers: Providers
) -> None:
    client = await exporter(aiohttp_client, config_for(two_providers(providers), redis_url))
    healthz = await client.get("/healthz")
    assert (healthz.status, await healthz.json()) == (200, {"status": "ok"})
    readyz = await client.get("/readyz")
    assert (readyz.status, await readyz.json()) == (200, {"status": "ok", "redis": "ok"})

    index = await client.get("/")
    assert index.status == 200
    assert index.headers["Content-Type"].startswith("text/html")
    page = await index.text()
    assert "href='/metrics'" in page
    assert "EIA: 2 datasets" in page
    assert "OLD: 1 datasets (disabled)" in page


async def test_process_metrics_from_a_private_registry(
    aiohttp_client: Any, redis_url: str, providers: Providers
) -> None:
    from prometheus_client import REGISTRY, Gauge

    # Something registered globally must not leak into the exporter's output.
    leaked = Gauge("feedguard_test_global_leak", "must not appear", registry=REGISTRY)
    try:
        client = await exporter(aiohttp_client, config_for(two_providers(providers), redis_url))
        text = await scrape(client)
    finally:
        REGISTRY.unregister(leaked)
    assert "feedguard_test_global_leak" not in text
    assert "process_resident_memory_bytes" in text
    assert "python_info" in text


async def test_promtool_accepts_the_output(
    aiohttp_client: Any, redis_url: str, redis_client: redis.Redis, providers: Providers
) -> None:
    promtool = require_binary("promtool")
    redis_client.set("external:last_success:EIA:rto", "1700000000.5")
    redis_client.set("external:provider_status:EIA", '{"status": "up", "checked_at": 1}')
    redis_client.set("external:provider_status:NOAA", "garbage")
    client = await exporter(aiohttp_client, config_for(two_providers(providers), redis_url))
    text = await scrape(client)
    assert "external_provider_probe_success" in text

    process = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(text.encode()), 30)
    # promtool exits 3 and names the series for any lint problem (no HELP, bad name...).
    assert process.returncode == 0, output.decode()
    assert output.decode().strip() == ""
