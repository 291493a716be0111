"""The store's pipelined Redis lane (responder/store/lane.py) against a real redis-server:
replies matched in order, error replies, NOSCRIPT, AUTH and SELECT from the URL, a Unix
socket, a server that stops answering, a connection killed under it, and the store's
recording and reading through it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from feedguard.responder.store import StoreUnavailable
from feedguard.responder.store.lane import RedisLane
from feedguard.responder.store.memo import QueuedEntries
from feedguard.responder.store.redis import RedisStore

from .support.services import Service, free_port, redis_server, require_binary, running


def lane_for(url: str, password: str | None = None, timeout: float = 2.0) -> RedisLane:
    lane = RedisLane.for_url(url, password, timeout)
    assert lane is not None
    return lane


@contextlib.asynccontextmanager
async def opened(lane: RedisLane) -> AsyncIterator[RedisLane]:
    try:
        yield lane
    finally:
        await lane.close()


async def test_concurrent_commands_get_their_own_replies_in_order(redis_url: str) -> None:
    async with opened(lane_for(redis_url)) as lane:
        await asyncio.gather(*(lane.call("SET", f"k{n}", n) for n in range(200)))
        replies = await asyncio.gather(*(lane.call("GET", f"k{n}") for n in range(200)))
        assert replies == [str(n).encode() for n in range(200)]
        assert await lane.calls(("RPUSH", "l", b"a", b"b"), ("LRANGE", "l", 0, -1)) == [
            2,
            [b"a", b"b"],
        ]


async def test_an_error_reply_fails_its_own_command_only(redis_url: str) -> None:
    async with opened(lane_for(redis_url)) as lane:
        await lane.call("SET", "text", "x")
        wrong, after = await asyncio.gather(
            lane.call("LPUSH", "text", "y"), lane.call("GET", "text"), return_exceptions=True
        )
        assert isinstance(wrong, ResponseError)
        assert "WRONGTYPE" in str(wrong)
        assert after == b"x"
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await lane.calls(("GET", "text"), ("LPUSH", "text", "y"))
        assert await lane.call("PING") == b"PONG"


async def test_a_script_redis_does_not_know_is_sent_whole(redis_url: str) -> None:
    source = "return ARGV[1] .. KEYS[1]"
    async with opened(lane_for(redis_url)) as lane:
        await lane.call("SCRIPT", "FLUSH")
        sha = redis.Redis.from_url(redis_url).register_script(source).sha
        assert await lane.script(sha, source, ["k"], ["v"]) == b"vk"
        assert await lane.call("SCRIPT", "EXISTS", sha) == [1]
        assert await lane.script(sha, source, ["k2"], ["v"]) == b"vk2"


async def test_password_username_and_database_come_from_the_url(tmp_path: Path) -> None:
    with redis_server(tmp_path, "--requirepass", "s3cret") as service:
        admin = redis.Redis(port=service.port, password="s3cret")
        admin.execute_command("ACL", "SETUSER", "feed", "on", ">pw2", "~*", "+@all")
        base = f"127.0.0.1:{service.port}"
        async with opened(lane_for(f"redis://:s3cret@{base}/3")) as lane:
            await lane.call("SET", "where", "db3")
        assert redis.Redis(port=service.port, password="s3cret", db=3).get("where") == b"db3"
        async with opened(lane_for(f"redis://feed:pw2@{base}/0")) as lane:
            assert await lane.call("ACL", "WHOAMI") == b"feed"
        # The store's password argument wins over none in the URL.
        async with opened(lane_for(f"redis://{base}/0", password="s3cret")) as lane:
            assert await lane.call("PING") == b"PONG"
        async with opened(lane_for(f"redis://:wrong@{base}/0")) as lane:
            with pytest.raises(ResponseError, match=r"WRONGPASS|invalid"):
                await lane.call("PING")
        admin.close()


async def test_a_unix_socket_url_is_served(tmp_path: Path) -> None:
    socket = tmp_path / "redis.sock"
    with redis_server(tmp_path, "--unixsocket", str(socket)):
        async with opened(lane_for(f"unix://{socket}?db=2")) as lane:
            await lane.call("SET", "over", "unix")
            assert await lane.call("GET", "over") == b"unix"


def test_urls_the_lane_does_not_serve_stay_on_redis_py() -> None:
    assert RedisLane.for_url("rediss://127.0.0.1:6380/0", None, 1.0) is None
    assert RedisLane.for_url("redis://127.0.0.1:6379/0?socket_keepalive=true", None, 1.0) is None
    assert RedisLane.for_url("redis://127.0.0.1:6379/0", None, 1.0) is not None


class SilentRedis:
    """Takes connections and reads, never answers (a wedged Redis); counts connections."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = 0

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        while await reader.read(65536):
            pass
        writer.close()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[SilentRedis]:
        async with await asyncio.start_server(self._swallow, "127.0.0.1", self.port):
            yield self


async def test_a_server_that_stops_answering_fails_every_waiting_command() -> None:
    async with (
        SilentRedis().serve() as silent,
        opened(lane_for(f"redis://127.0.0.1:{silent.port}/0", timeout=0.3)) as lane,
    ):
        results = await asyncio.gather(
            *(lane.call("GET", f"k{n}") for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert "no reply within 0.3s" in str(results[0])


async def test_a_killed_connection_fails_its_commands_and_the_next_call_reconnects(
    redis_url: str, redis_service: Service
) -> None:
    admin = redis.Redis.from_url(redis_url)
    async with opened(lane_for(redis_url)) as lane:
        await lane.call("CLIENT", "SETNAME", "lane-under-test")
        blocked = asyncio.ensure_future(lane.call("BLPOP", "never", 0))
        await asyncio.sleep(0.1)
        admin.execute_command("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
        with pytest.raises(RedisConnectionError, match="connection lost"):
            await blocked
        assert await lane.call("PING") == b"PONG"
    admin.close()


async def test_nothing_listening_is_a_redis_error() -> None:
    lane = lane_for(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    with pytest.raises(RedisError, match="cannot connect"):
        await lane.call("PING")


async def test_the_store_records_beyond_the_scripts_unpack_limit_in_order(redis_url: str) -> None:
    """One notification of 9,000 alerts, beyond Lua's unpack() limit (8,000): one script
    call, pushed a thousand at a time."""
    store = RedisStore(redis_url)
    await store.open()
    try:
        items = [(f"t{n}", {"n": n}) for n in range(9000)]
        assert await store.record_transitions(items) == [True] * 9000
        assert await store.inbox_peek(10000) == [{"n": n} for n in range(9000)]
        # Read again (the first read took the queued documents): decoded, the same.
        assert await store.inbox_peek(10000) == [{"n": n} for n in range(9000)]
    finally:
        await store.close()


async def test_the_store_is_unavailable_while_redis_is_down_and_back_after(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as service:
        port = service.port
        store = RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout=0.5)
        await store.open()
        assert await store.record_transitions([("a", {"n": 1})]) == [True]
    try:
        with pytest.raises(StoreUnavailable):
            await store.record_transitions([("b", {"n": 2})])
        with pytest.raises(StoreUnavailable):
            await store.inbox_peek(10)
        # Redis back on the same port: the lane connects again, nothing else to do.
        argv = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
        with running("redis-again", argv, port, tmp_path):
            assert await store.record_transitions([("c", {"n": 3})]) == [True]
            assert await store.inbox_peek(10) == [{"n": 3}]
    finally:
        await store.close()


async def test_the_apply_reads_back_what_this_replica_queued(redis_url: str) -> None:
    """Entries this store queued come back without decoding (the same documents); one
    read a second time, or queued by another replica, is decoded: equal either way."""
    here, there = RedisStore(redis_url), RedisStore(redis_url)
    await here.open()
    await there.open()
    try:
        ours = {"key": "a", "alert": {"labels": {"x": "1"}}, "n": 1.5}
        await here.record_transitions([("a", ours)])
        await there.record_transitions([("b", {"key": "b", "n": 2})])
        first = await here.inbox_peek(10)
        assert first == [ours, {"key": "b", "n": 2}]
        assert first[0] is ours
        again = await here.inbox_peek(10)
        assert again == first
        assert again[0] is not ours
    finally:
        await here.close()
        await there.close()


def test_queued_entries_are_bounded_oldest_forgotten_first() -> None:
    queued = QueuedEntries(max_entries=2)
    for n in range(3):
        queued.add(b"%d" % n, {"n": n})
    assert len(queued) == 2
    assert queued.take(b"0") is None
    assert queued.take(b"2") == {"n": 2}
    assert queued.take(b"2") is None


async def test_callers_waiting_for_a_connection_share_one_attempt() -> None:
    """A Redis that takes the connection and never answers (the AUTH here): eight
    callers at once make ONE attempt and share its failure, instead of queueing for
    eight attempts of a timeout each."""
    async with (
        SilentRedis().serve() as silent,
        opened(lane_for(f"redis://:pw@127.0.0.1:{silent.port}/0", timeout=0.3)) as lane,
    ):
        results = await asyncio.gather(
            *(lane.call("PING") for _ in range(8)), return_exceptions=True
        )
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert "not connected within 0.3s" in str(results[0])
        assert silent.accepted == 1
        # The next call tries again (the attempt is not remembered as a verdict).
        with pytest.raises(RedisTimeoutError):
            await lane.call("PING")
        assert silent.accepted == 2
