"""Serving a fake API's aiohttp app on a free loopback port, for the length of a block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Yield the base URL (no trailing slash) of ``app`` served on 127.0.0.1."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
