"""hiredis packing of Redis commands: byte-identical to redis-py's own, or not used."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from feedguard.responder.store.packing import (
    HiredisConnection,
    HiredisSSLConnection,
    HiredisUnixConnection,
    fast_packing,
)

CASES: list[tuple[Any, ...]] = [
    ("SET", "feedguard:k", b"v"),
    ("EVALSHA", "a" * 40, 3, b"k1", "k2", b"k3", 2_592_000_000, "", b"n" + b"x" * 7000),
    ("SET", "k", -12),
    ("SET", "k", 2**80),
    ("SET", "k", ""),
    ("CONFIG GET", "maxmemory"),  # redis-py splits the name into its words
    (b"CONFIG GET", b"maxmemory"),
    ("SET", "k", 1.5),  # what hiredis would not pack alike goes redis-py's way
    ("SET", "k", "é"),
    ("SET", "k", memoryview(b"abc")),
]
REFUSED: list[tuple[Any, ...]] = [("SET", "k", True), ("SET", "k", None), ("SET", "k", "\ud800")]


def _packed(connection: Connection, args: tuple[Any, ...]) -> bytes | str:
    try:
        return b"".join(connection.pack_command(*args))
    except Exception as exc:  # the error is what is compared
        return type(exc).__name__


@pytest.mark.parametrize("args", CASES + REFUSED)
def test_packing_is_byte_identical_to_redis_py(args: tuple[Any, ...]) -> None:
    assert _packed(HiredisConnection(), args) == _packed(Connection(), args)


@pytest.mark.parametrize("args", REFUSED)
def test_values_redis_py_refuses_are_still_refused(args: tuple[Any, ...]) -> None:
    assert _packed(HiredisConnection(), args) in ("DataError", "UnicodeEncodeError")


@pytest.mark.parametrize(
    ("url", "plain", "fast"),
    [
        ("redis://127.0.0.1:1/0", Connection, HiredisConnection),
        ("rediss://127.0.0.1:1/0", SSLConnection, HiredisSSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection, HiredisUnixConnection),
    ],
)
def test_fast_packing_keeps_the_kind_of_connection(url: str, plain: type, fast: type) -> None:
    client = aioredis.Redis.from_url(url)
    assert client.connection_pool.connection_class is plain
    fast_packing(client)
    assert client.connection_pool.connection_class is fast
    assert issubclass(fast, plain)


async def test_store_commands_round_trip_through_hiredis_packing(redis_url: str) -> None:
    client = fast_packing(aioredis.Redis.from_url(redis_url))
    try:
        await client.set("feedguard:test:packed", b"x" * 7000, px=60_000)
        assert await client.get("feedguard:test:packed") == b"x" * 7000
        assert await client.config_get("maxmemory")  # a name with a space, split
    finally:
        await client.aclose()
