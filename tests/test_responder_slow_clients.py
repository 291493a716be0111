"""Slow senders are cut off by the header and body read timeouts; a client that goes
away mid-body is one structured log line, never aiohttp's traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import structlog

from .conftest import make_catalog
from .support.raw_http import client_gone_mid_body
from .support.responder import (
    BEARER,
    FLAGS_TOKEN,
    Responder,
    alert,
    counting_actions,
    notification,
    responder_config,
    start_responder,
    wait_for,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})
SLOW_SENDERS = 40


def head(path: str, token: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    # Bounded: a server that never cuts the sender off fails here, not by hanging.
    async with asyncio.timeout(30):
        return await reader.read()


async def slow_body(r: Responder, path: str, token: str) -> bytes:
    """Headers, then a few bytes of a promised 1,000 and nothing more: what comes back
    before the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", r.server.port)
    try:
        writer.write(head(path, token, 1000) + b'{"version": ')
        await writer.drain()
        return await read_all(reader)
    finally:
        writer.close()


@pytest.fixture
async def slow(tmp_path: Path) -> Responder:
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        webhook={"bearer_token": BEARER, "body_timeout_seconds": 0.5, "header_timeout_seconds": 1},
    )
    async with start_responder(config, actions=counting_actions()) as r:
        yield r


async def test_slow_bodies_are_cut_off_with_408(slow: Responder) -> None:
    r = slow
    answers = await asyncio.gather(
        *(slow_body(r, "/webhook/alertmanager", BEARER) for _ in range(SLOW_SENDERS)),
        r.post(notification([alert("ISO-NE")])),
    )
    for answer in answers[:-1]:
        assert isinstance(answer, bytes)
        # The answer, then the server closed the connection (read() reached EOF).
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b"body not received within 0.5 s" in answer
    assert answers[-1].status == 200  # type: ignore[union-attr]
    text = await r.metrics()
    assert f'feedguard_responder_notifications_total{{result="timeout"}} {SLOW_SENDERS}.0' in text
    assert await r.incidents() != []


async def test_slow_flag_body_is_cut_off(slow: Responder) -> None:
    answer = await slow_body(slow, "/runtime-config/v1/features/dry_run", FLAGS_TOKEN)
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_slow_headers_are_cut_off(slow: Responder) -> None:
    r = slow
    reader, writer = await asyncio.open_connection("127.0.0.1", r.server.port)
    try:
        writer.write(b"POST /webhook/alertmanager HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        # Never finishing the headers: the server closes the connection.
        assert b"200" not in await read_all(reader)
    finally:
        writer.close()
    assert (await r.post(notification([alert("ISO-NE")]))).status == 200


async def test_client_gone_mid_body_is_one_log_line(
    slow: Responder, caplog: pytest.LogCaptureFixture
) -> None:
    r = slow
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        await client_gone_mid_body(r.server.port or 0, BEARER)

        async def logged() -> bool:
            return any(e["event"] == "client disconnected" for e in logs)

        await wait_for(logged)
    gone = [e for e in logs if e["event"] == "client disconnected"]
    assert len(gone) == 1
    assert gone[0]["path"] == "/webhook/alertmanager"
    assert gone[0]["log_level"] == "info"
    # Nothing from aiohttp at warning or above (its "Error handling request" traceback).
    assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING] == []
    assert (await r.post(notification([alert("ISO-NE")]))).status == 200
