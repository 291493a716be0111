"""The scrape deadline: from Prometheus' header, and enforced on a source that hangs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from feedguard.exporter.app import create_app
from feedguard.exporter.collectors.base import Deadline
from feedguard.exporter.scrape import scrape_timeout, soft_deadline

from .exporter_support import config_for, make_catalog, value


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 10.0),
        ("", 10.0),
        ("4.5", 4.5),
        ("abc", 10.0),
        ("-1", 10.0),
        ("nan", 10.0),
        ("600", 60.0),
    ],
)
def test_scrape_timeout_from_the_header(header: str | None, expected: float) -> None:
    assert scrape_timeout(header, default=10.0, maximum=60.0) == expected


async def test_collectors_are_told_a_deadline_before_the_cut_off() -> None:
    hard = Deadline.in_seconds(1.0)
    soft = soft_deadline(hard)
    assert hard.at - 0.11 < soft.at < hard.at
    tiny = Deadline.in_seconds(0.05)
    assert tiny.at - 0.006 < soft_deadline(tiny).at < tiny.at


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers, like a wedged Redis."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_hanging_redis_is_cut_at_the_deadline(
    aiohttp_client: Any, silent_redis: str
) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    config = config_for(catalog, silent_redis, probes=False, deadline_margin_seconds=0.5)
    # Redis' own socket timeout (config_for: 1 s) is longer than this scrape's budget.
    client = await aiohttp_client(create_app(config))
    response = await client.get(
        "/metrics",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"},
        timeout=aiohttp.ClientTimeout(total=8),
    )
    assert response.status == 200
    text = await response.text()
    assert value(text, "external_exporter_collector_up", collector="redis") == 0
    took = value(text, "external_exporter_collector_duration_seconds", collector="redis")
    assert took is not None
    assert took < 1.0  # the 0.5 s budget, not Redis' 1 s socket timeout
