"""Counting the HTTP requests a client session sends (aiohttp tracing, no patching).

Test modules import ``counter_fixture`` and ``session_fixture`` to use the
``counter`` and ``session`` fixtures (named so a test's argument shadows no import).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import pytest


class RequestCounter:
    """Counts the HTTP requests a session sends as (method, path)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._start)

    async def _start(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        self.sent.append((params.method, params.url.path))


@pytest.fixture(name="counter")
def counter_fixture() -> RequestCounter:
    return RequestCounter()


@pytest.fixture(name="session")
async def session_fixture(counter: RequestCounter) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trace_configs=[counter.config]) as s:
        yield s
