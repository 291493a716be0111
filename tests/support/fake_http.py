"""Serving a fake API's aiohttp app on a free loopback port, for the length of a block."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def record_client_ports(ports: list[int]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware appending each request's client port to ``ports``: requests
    from one port came over one TCP connection."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(int(peer[1]) if peer else 0)
        return await handler(request)

    return middleware


@dataclass(frozen=True)
class Arrival:
    method: str
    path: str
    at: float  # time.monotonic() when the request arrived


def record_arrivals(arrivals: list[Arrival]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware appending each request's method, path and arrival time to
    ``arrivals`` (what a test of the client's pacing asserts on)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        arrivals.append(Arrival(request.method, request.path, time.monotonic()))
        return await handler(request)

    return middleware


def retry_after_headers(status: int, retry_after: str | None) -> dict[str, str]:
    """The ``Retry-After`` an injected 429 or 503 carries (RFC 9110 pairs it with those)."""
    return {"Retry-After": retry_after} if retry_after and status in (429, 503) else {}


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Yield the base URL (no trailing slash) of ``app`` served on 127.0.0.1."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
