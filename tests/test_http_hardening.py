"""The seed's API hardening on both services: rate limit, gzip, security headers."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from feedguard.core.http_hardening import (
    GzipSettings,
    HttpSettings,
    RateLimitSettings,
    accepts_gzip,
)
from feedguard.core.http_security import CONTENT_SECURITY_POLICY
from feedguard.core.ratelimit import TokenBuckets
from feedguard.core.schema import ConfigError
from feedguard.exporter.app import create_app
from feedguard.exporter.config import load_config as load_exporter_config
from feedguard.responder.config import load_config as load_responder_config

from .conftest import make_catalog
from .exporter_support import config_for
from .support.responder import responder_config, start_responder
from .support.services import free_port

# One request per hour after a burst of two: the third is refused whatever the
# test's pace, so no assertion depends on timing.
Start = Callable[[HttpSettings], Awaitable[str]]
STRICT = RateLimitSettings(requests=1, window_seconds=3600, burst=2, exempt_cidrs=())


def test_a_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    buckets = TokenBuckets(requests=100, window=60, burst=20)
    assert all(buckets.take("10.1.1.1", 1000.0).allowed for _ in range(20))
    refused = buckets.take("10.1.1.1", 1000.0)
    assert not refused.allowed
    assert refused.retry_after == 1  # 0.6 s to the next token, rounded up
    # Another client has its own bucket.
    assert buckets.take("10.1.1.2", 1000.0).allowed
    # 100 per 60 s: 0.6 s brings one token back, 12 s the whole burst.
    assert buckets.take("10.1.1.1", 1000.6).allowed
    assert not buckets.take("10.1.1.1", 1000.6).allowed
    assert sum(buckets.take("10.1.1.1", 1100.0).allowed for _ in range(25)) == 20


def test_retry_after_counts_the_seconds_to_the_next_token() -> None:
    buckets = TokenBuckets(requests=1, window=3600, burst=1)
    assert buckets.take("a", 0.0).allowed
    assert buckets.take("a", 0.0).retry_after == 3600
    assert buckets.take("a", 1800.0).retry_after == 1800


def test_full_buckets_are_forgotten_past_max_keys() -> None:
    buckets = TokenBuckets(requests=60, window=60, burst=5, max_keys=3)
    for n in range(3):
        buckets.take(f"c{n}", 0.0)
    assert len(buckets) == 3
    # Long after: the three are full again, so they go when a fourth arrives.
    buckets.take("c9", 100.0)
    assert len(buckets) == 1


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("GZIP", True),
        ("*", True),
        ("gzip;q=0", False),
        ("deflate", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_with_its_q_values(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_bad_hardening_settings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yml"
    path.write_text(
        "catalog: {providers: [{name: EIA, datasets: [a]}]}\n"
        "http:\n  rate_limit: {requests: 0, exempt_cidrs: ['10.0.0.0/8', 'nonsense']}\n"
        "  gzip: {min_bytes: -1}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_exporter_config(path, environ={})
    text = str(caught.value)
    assert f"{path}: http.rate_limit.requests:" in text
    assert f"{path}: http.rate_limit.exempt_cidrs: item 1:" in text
    assert f"{path}: http.gzip.min_bytes:" in text
    responder = tmp_path / "responder.yml"
    responder.write_text("http: {rate_limit: {burst: 0}}\n")
    with pytest.raises(ConfigError, match=r"http\.rate_limit\.burst"):
        load_responder_config(responder, environ={})


def test_the_seed_defaults() -> None:
    settings = HttpSettings()
    assert (settings.rate_limit.requests, settings.rate_limit.window_seconds) == (100, 60)
    assert settings.rate_limit.burst == 20
    assert "10.0.0.0/8" in settings.rate_limit.exempt_cidrs
    assert settings.gzip.min_bytes == 1024


@pytest.fixture
async def exporter_with(redis_url: str) -> AsyncIterator[Start]:
    servers: list[TestServer] = []

    async def start(http: HttpSettings) -> str:
        config = config_for(
            make_catalog({"EIA": {"datasets": [f"d{n}" for n in range(40)]}}),
            redis_url,
            probes=False,
        ).model_copy(update={"http": http})
        server = TestServer(create_app(config), host="127.0.0.1", port=free_port())
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


async def test_exporter_limits_a_client_with_429_and_retry_after(exporter_with: Start) -> None:
    url = await exporter_with(HttpSettings(rate_limit=STRICT))
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(url + "/metrics") as response:
                assert response.status == 200
        async with session.get(url + "/metrics") as response:
            assert response.status == 429
            assert 3590 <= int(response.headers["Retry-After"]) <= 3600
            assert (await response.json())["error"] == "too many requests"
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        # Liveness and readiness are never limited.
        for _ in range(5):
            async with session.get(url + "/healthz") as response:
                assert response.status == 200


async def test_exempt_cidrs_are_never_limited(exporter_with: Start) -> None:
    exempt = STRICT.model_copy(update={"exempt_cidrs": ("127.0.0.0/8",)})
    url = await exporter_with(HttpSettings(rate_limit=exempt))
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.get(url + "/metrics") as response:
                assert response.status == 200


async def test_exporter_gzips_metrics_when_accepted(exporter_with: Start) -> None:
    url = await exporter_with(HttpSettings())
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in response.headers["Vary"]
            text = gzip.decompress(await response.read()).decode()
            assert 'external_data_last_success_recorded{dataset="d39",provider="EIA"} 0' in text
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with session.get(url + "/metrics", headers={"Accept-Encoding": "identity"}) as plain:
            assert "Content-Encoding" not in plain.headers
            assert (await plain.read()).decode().startswith("#")
        # Under 1 KiB: sent as is even when gzip is accepted.
        async with session.get(url + "/healthz", headers={"Accept-Encoding": "gzip"}) as small:
            assert "Content-Encoding" not in small.headers
            assert await small.json() == {"status": "ok"}


async def test_gzip_can_be_switched_off(exporter_with: Start) -> None:
    url = await exporter_with(HttpSettings(gzip=GzipSettings(enabled=False)))
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}) as response,
    ):
        assert "Content-Encoding" not in response.headers


async def test_exporter_sends_the_security_headers_on_errors_too(exporter_with: Start) -> None:
    url = await exporter_with(HttpSettings())
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/no/such/page") as response,
    ):
        assert response.status == 404
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in response.headers


async def test_responder_limits_gzips_and_documents_the_429(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=make_catalog({"ISO-NE": {}}))
    config = config.model_copy(update={"http": HttpSettings(rate_limit=STRICT)})
    async with start_responder(config, actions={}) as r:
        async with aiohttp.ClientSession(auto_decompress=False) as raw:
            async with raw.get(r.url + "/openapi.json", headers={"Accept-Encoding": "gzip"}) as doc:
                assert doc.status == 200
                assert doc.headers["Content-Encoding"] == "gzip"
                assert gzip.decompress(await doc.read()).startswith(b"{")
            async with raw.get(r.url + "/metrics", headers={"Accept-Encoding": "gzip"}) as metrics:
                assert metrics.headers["Content-Encoding"] == "gzip"
                assert b"feedguard_build_info" in gzip.decompress(await metrics.read())
        # The third request in the hour is refused; the 429 is in responder/openapi.yml
        # (every answer read through r.session is checked against it).
        async with r.session.get(r.url + "/api/v1/incidents") as refused:
            assert refused.status == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert (await refused.json())["error"] == "too many requests"
