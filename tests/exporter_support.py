"""Helpers for the exporter tests: configs, fake providers on loopback, metric parsing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from feedguard.core.catalog import Catalog
from feedguard.core.settings import RedisSettings
from feedguard.exporter.config import ExporterConfig, ProbeSettings

from .conftest import make_catalog

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(name, labels): value} of a Prometheus text exposition."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = frozenset(_LABEL.findall(match.group(3) or ""))
        found[(match.group(1), labels)] = float(match.group(4))
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of one series, or None when it is absent."""
    return samples(text).get((name, frozenset(labels.items())))


def config_for(
    catalog: Catalog, redis_url: str, *, probes: bool = True, **scrape: float
) -> ExporterConfig:
    config = ExporterConfig(catalog=catalog)
    return config.model_copy(
        update={
            "redis": RedisSettings(url=redis_url, socket_timeout_seconds=1.0),
            "probes": ProbeSettings(enabled=probes),
            "scrape": config.scrape.model_copy(update=scrape),
        }
    )


@dataclass
class Providers:
    """A loopback HTTP server standing in for providers' health endpoints.

    ``/ok`` answers 200, ``/status/<code>`` that code, ``/hang`` never answers
    (until the test ends), ``/toggle`` answers ``toggle_status`` (changeable).
    """

    server: TestServer
    release: asyncio.Event
    toggle_status: int = 200
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    def probe(self, path: str, **fields: Any) -> dict[str, Any]:
        return {"health_probe": {"url": self.url(path), **fields}}


async def provider_server(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> AsyncIterator[Providers]:
    release = asyncio.Event()
    app = web.Application()
    state: dict[str, Providers] = {}

    def count(request: web.Request) -> None:
        hits = state["p"].hits
        hits[request.path] = hits.get(request.path, 0) + 1

    async def ok(request: web.Request) -> web.Response:
        count(request)
        return web.Response(text="ok")

    async def status(request: web.Request) -> web.Response:
        count(request)
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def hang(request: web.Request) -> web.Response:
        count(request)
        await release.wait()
        return web.Response(text="too late")

    async def toggle(request: web.Request) -> web.Response:
        count(request)
        return web.Response(status=state["p"].toggle_status, text="toggle")

    app.router.add_route("*", "/ok", ok)
    app.router.add_route("*", r"/status/{code:\d+}", status)
    app.router.add_route("*", "/hang", hang)
    app.router.add_route("*", "/toggle", toggle)
    server = await aiohttp_server(app)
    providers = Providers(server, release)
    state["p"] = providers
    yield providers
    release.set()  # lets hanging handlers finish so the server stops promptly


__all__ = ["config_for", "make_catalog", "provider_server", "samples", "value"]
