"""Consumer probes against a loopback consumer API: good, late, malformed, slow and 5xx answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from feedguard.core.schema import ConfigError
from feedguard.exporter.app import create_app
from feedguard.exporter.collectors.consumers import data_timestamp, resolve_pointer
from feedguard.exporter.config import load_config

from .exporter_support import config_for, make_catalog, value

TOKEN = "consumer-token"
NOW = time.time()
STAMP = "external_consumer_data_timestamp"
SUCCESS = "external_consumer_probe_success"
CODE = "external_consumer_probe_http_status_code"


class ScenarioApi:
    """Stands in for the scenario API (``/v2/scenarios/*``): bearer auth, JSON answers."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen_auth: list[str | None] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen_auth.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"detail": "Not authenticated"}, status=401)
        name = request.match_info["name"]
        if name == "good":
            return web.json_response({"data": [{"updated_at": NOW - 60}], "meta": {}})
        if name == "iso":
            return web.json_response({"meta": {"freshness": {"max_as_of": "2026-12-01T00:00:00Z"}}})
        if name == "late":
            return web.json_response({"data": [{"updated_at": NOW - 3600}]})
        if name == "not-json":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if name == "no-field":
            return web.json_response({"data": []})
        if name == "naive":
            return web.json_response({"data": [{"updated_at": "2026-12-01T00:00:00"}]})
        if name == "slow":
            await self.release.wait()
            return web.json_response({"data": [{"updated_at": NOW}]})
        return web.json_response({"detail": "trino unavailable"}, status=503)


@pytest.fixture
async def api(aiohttp_server: Any) -> AsyncIterator[tuple[ScenarioApi, TestServer]]:
    fake = ScenarioApi()
    app = web.Application()
    app.router.add_get("/v2/scenarios/{name}", fake.handle)
    server: TestServer = await aiohttp_server(app)
    yield fake, server
    fake.release.set()


def probe(server: TestServer, name: str, token_file: Path, **fields: Any) -> dict[str, Any]:
    pointer = "/meta/freshness/max_as_of" if name == "iso" else "/data/0/updated_at"
    return {
        "endpoint": f"/v2/scenarios/{name}",
        "url": str(server.make_url(f"/v2/scenarios/{name}")),
        "timestamp_pointer": pointer,
        "token_file": str(token_file),
        **fields,
    }


async def scrape(client: TestClient[Any, Any]) -> str:
    # Far below the slow endpoint's wait: a scrape the deadline does not bound fails here.
    response = await client.get(
        "/metrics",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"},
        timeout=aiohttp.ClientTimeout(total=8),
    )
    assert response.status == 200
    return await response.text()


async def test_good_late_malformed_slow_and_5xx_answers(
    aiohttp_client: Any, redis_url: str, api: tuple[ScenarioApi, TestServer], tmp_path: Path
) -> None:
    fake, server = api
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    names = ["good", "iso", "late", "not-json", "no-field", "naive", "slow", "broken"]
    catalog = make_catalog(
        {
            "ISO-NE": {
                "datasets": ["lmp_realtime_5min"],
                "consumer_probes": [
                    probe(server, n, token_file, timeout_seconds=30) for n in names
                ],
            },
            "EIA": {
                "consumer_probes": [
                    {**probe(server, "good", tmp_path / "none"), "token_file": None}
                ]
            },
        }
    )
    config = config_for(catalog, redis_url, probes=False, deadline_margin_seconds=0.5)
    client = await aiohttp_client(create_app(config))
    text = await scrape(client)

    def series(name: str, endpoint: str, provider: str = "ISO-NE") -> float | None:
        return value(text, name, provider=provider, endpoint=f"/v2/scenarios/{endpoint}")

    assert series(STAMP, "good") == pytest.approx(NOW - 60)
    assert series(STAMP, "iso") == data_timestamp("2026-12-01T00:00:00+00:00")
    # Late data is still a successful read: the alert judges its age.
    assert series(STAMP, "late") == pytest.approx(NOW - 3600)
    for name in ("good", "iso", "late"):
        assert series(SUCCESS, name) == 1
        assert series(CODE, name) == 200
    for name in ("not-json", "no-field", "naive"):
        assert series(SUCCESS, name) == 0, name
        assert series(STAMP, name) is None, name
        assert series(CODE, name) == 200, name
    # The slow one is cut off by the scrape deadline (not its own 30 s) and reported.
    assert series(SUCCESS, "slow") == 0
    assert series(CODE, "slow") == 0
    assert series(SUCCESS, "broken") == 0
    assert series(CODE, "broken") == 503
    # Without a token the API answers 401: a failed probe, and no token was invented.
    assert series(SUCCESS, "good", provider="EIA") == 0
    assert series(CODE, "good", provider="EIA") == 401
    assert None in fake.seen_auth
    assert value(text, "external_exporter_collector_up", collector="consumers") == 1


async def test_no_consumer_probe_no_collector(aiohttp_client: Any, redis_url: str) -> None:
    config = config_for(make_catalog({"EIA": {"datasets": ["a"]}}), redis_url, probes=False)
    client = await aiohttp_client(create_app(config))
    text = await scrape(client)
    assert "external_consumer" not in text
    assert value(text, "external_exporter_collector_up", collector="consumers") is None


@pytest.mark.parametrize(
    ("document", "pointer", "expected"),
    [
        ({"a": {"b": [1, {"c": 1.7e9}]}}, "/a/b/1/c", 1.7e9),
        ({"a/b": {"~x": "2026-12-01T01:00:00+01:00"}}, "/a~1b/~0x", 1796083200.0),
        (1.7e9, "", 1.7e9),
    ],
)
def test_pointer_and_timestamp(document: Any, pointer: str, expected: float) -> None:
    assert data_timestamp(resolve_pointer(document, pointer)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("document", "pointer", "error"),
    [
        ({"a": []}, "/a/0", KeyError),
        ({"a": 1}, "/b", KeyError),
        ({"a": True}, "/a", ValueError),
        ({"a": -5}, "/a", ValueError),
        ({"a": "soon"}, "/a", ValueError),
        ({"a": None}, "/a", ValueError),
    ],
)
def test_unreadable_timestamps(document: Any, pointer: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        data_timestamp(resolve_pointer(document, pointer))


def test_an_unreadable_or_empty_token_file_is_a_config_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    missing = tmp_path / "missing-token"
    probes = [
        {"endpoint": name, "url": "http://127.0.0.1:1/x", "timestamp_pointer": "/t"}
        | {"token_file": str(token)}
        for name, token in (("/a", empty), ("/b", missing))
    ]
    settings = tmp_path / "exporter.yml"
    settings.write_text(
        yaml.safe_dump({"catalog": {"providers": [{"name": "EIA", "consumer_probes": probes}]}})
    )
    with pytest.raises(ConfigError) as caught:
        load_config(settings, environ={})
    assert caught.value.errors == [
        f"{empty}: <file>: the consumer probe token is empty",
        f"{missing}: <file>: cannot read consumer probe token: No such file or directory",
    ]
