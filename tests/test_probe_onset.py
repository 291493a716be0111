"""The probe onset of detection lag (runbook 7) made real: the exporter records when a
provider's probe first failed (feedguard:probe:failing_since:<provider>) and the
responder's incident measures its detection lag from it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestClient

from feedguard.core.keys import probe_failing_since_key
from feedguard.exporter.app import create_app
from feedguard.responder.detection import probe_failed_at

from .exporter_support import Providers, config_for, make_catalog, provider_server, value
from .support.responder import (
    CountingAction,
    FakeClock,
    alert,
    notification,
    responder_config,
    start_responder,
)
from .support.services import free_port, redis_server

SUCCESS = "external_provider_probe_success"
WRITE_FAILURES = "external_exporter_probe_onset_write_failures_total"
KEY = probe_failing_since_key("ISO-NE")
PLAYBOOKS = [
    {"name": "down", "matchers": ['alertname=~"External.*"'], "firing": [{"action": "noop"}]}
]


@pytest.fixture
async def providers(aiohttp_server: Any) -> AsyncIterator[Providers]:
    async for item in provider_server(aiohttp_server):
        yield item


@pytest.fixture
def read_only_redis_url(tmp_path: Path) -> Iterator[str]:
    """A real Redis that refuses writes: a replica of a master that is not there."""
    with redis_server(tmp_path, "--replicaof", "127.0.0.1", str(free_port())) as service:
        yield f"redis://127.0.0.1:{service.port}/0"


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics", timeout=aiohttp.ClientTimeout(total=8))
    assert response.status == 200
    return await response.text()


async def exporter(aiohttp_client: Any, redis_url: str, providers: Providers) -> TestClient:
    catalog = make_catalog({"ISO-NE": providers.probe("/toggle"), "EIA": providers.probe("/ok")})
    client: TestClient = await aiohttp_client(create_app(config_for(catalog, redis_url)))
    return client


def test_the_onset_is_the_earliest_of_the_key_and_a_failing_status_since() -> None:
    down = json.dumps({"status": "down", "since": 5000})
    assert probe_failed_at(down, b"4000.5") == 4000.5
    assert probe_failed_at(down, "6000") == 5000
    assert probe_failed_at('{"status": "up", "since": 1}', b"7000") == 7000
    assert probe_failed_at(None, None) is None
    assert probe_failed_at(None, b"garbage") is None
    assert probe_failed_at(None, b"-1") is None


async def test_the_first_failure_of_a_streak_is_kept_until_the_probe_passes(
    aiohttp_client: Any, redis_url: str, redis_client: redis.Redis, providers: Providers
) -> None:
    client = await exporter(aiohttp_client, redis_url, providers)
    await scrape(client)
    assert redis_client.get(KEY) is None  # healthy: nothing recorded

    providers.toggle_status = 503
    before = time.time()
    text = await scrape(client)
    after = time.time()
    assert value(text, SUCCESS, provider="ISO-NE") == 0
    raw = redis_client.get(KEY)
    assert raw is not None
    first = float(raw)
    assert before <= first <= after
    assert 0 < redis_client.ttl(KEY) <= 600
    assert redis_client.get(probe_failing_since_key("EIA")) is None

    # Still failing: the onset stays the first failure's.
    await scrape(client)
    assert float(redis_client.get(KEY) or 0) == first
    # An onset written earlier (another replica) is not moved forward either.
    redis_client.set(KEY, repr(first - 30))
    await scrape(client)
    assert float(redis_client.get(KEY) or 0) == first - 30

    providers.toggle_status = 200
    await scrape(client)
    assert redis_client.get(KEY) is None
    assert value(await scrape(client), WRITE_FAILURES) == 0


async def test_a_read_only_redis_costs_no_scrape(
    aiohttp_client: Any, read_only_redis_url: str, providers: Providers
) -> None:
    providers.toggle_status = 503
    client = await exporter(aiohttp_client, read_only_redis_url, providers)
    text = await scrape(client)
    assert value(text, SUCCESS, provider="ISO-NE") == 0
    assert value(text, SUCCESS, provider="EIA") == 1
    assert value(text, "external_exporter_collector_up", collector="probes") == 1
    text = await scrape(client)
    # Counted per scrape (this one's count is rendered after its own write).
    assert value(text, WRITE_FAILURES) == 2
    assert redis.Redis.from_url(read_only_redis_url).get(KEY) is None


async def test_an_unreachable_redis_costs_no_scrape(
    aiohttp_client: Any, providers: Providers
) -> None:
    providers.toggle_status = 503
    client = await exporter(aiohttp_client, f"redis://127.0.0.1:{free_port()}/0", providers)
    text = await scrape(client)
    assert value(text, SUCCESS, provider="ISO-NE") == 0
    assert value(text, "external_exporter_collector_up", collector="probes") == 1
    assert value(text, WRITE_FAILURES) == 1


async def test_the_incident_measures_its_lag_from_the_exporters_onset(
    tmp_path: Path,
    aiohttp_client: Any,
    redis_url: str,
    redis_client: redis.Redis,
    providers: Providers,
) -> None:
    providers.toggle_status = 503
    await scrape(await exporter(aiohttp_client, redis_url, providers))
    onset = float(redis_client.get(KEY) or 0)
    assert onset > 0

    catalog = make_catalog({"ISO-NE": {"datasets": ["lmp"]}, "EIA": {"datasets": ["rto"]}})
    config = responder_config(tmp_path, catalog=catalog, playbooks=PLAYBOOKS, redis_url=redis_url)
    # The alert reaches the responder 90 s after the first failed probe.
    clock = FakeClock(onset + 90)
    async with start_responder(config, clock=clock, actions={"noop": CountingAction("noop")}) as r:
        await r.post(notification([alert("ISO-NE", starts_at=onset + 60)]))
        await r.settle()
        detection = (await r.incident("ISO-NE"))["detection"]
    assert detection["source"] == "probe_failed"
    assert detection["onset_at"] == onset
    assert detection["seconds"] == pytest.approx(90.0)
