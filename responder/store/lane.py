"""One pipelined Redis connection for the store's hot path (the webhook's group commit,
the inbox reads): commands are packed by hiredis, written at once, and their replies
matched in order as they arrive.

redis-py's asyncio client spends ~40 us of CPU per command around the round trip
(connection pool, retry wrapper, a task for ``wait_for`` on the write, a timeout on
the read), a fifth of a webhook request's cost when every request records new
transitions.  Here a command costs a write and a future: the reply parsing is still
hiredis, the protocol's details are still Redis's (RESP2).  Only what needs no
connection state goes through the lane: never WATCH/MULTI (redis-py keeps those).

The URL is read by redis-py's own ``parse_url``; TCP and Unix sockets with a username,
password and database are served.  Anything else (TLS: ``rediss://``) returns no lane
(``RedisLane.for_url``), and the store keeps using redis-py for everything.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import hiredis
from redis.asyncio.connection import UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Options of a URL the lane honours; any other (ssl_*, socket_keepalive, ...) keeps the
# store on redis-py, which knows them all.
_SERVED = {"host", "port", "path", "db", "username", "password", "connection_class"}


class _Protocol(asyncio.Protocol):
    """Replies matched to waiting futures in the order the commands were written."""

    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        try:
            while (reply := self.reader.gets()) is not False:
                future = pending.popleft()[0]
                if future.done():
                    continue
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # a reply nobody asked for
            self._abort(RedisConnectionError(f"redis protocol error: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(self.lost or RedisConnectionError(f"redis connection lost: {exc or 'closed'}"))

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None:
            raise self.lost or RedisConnectionError("redis connection not open")
        future = self.loop.create_future()
        self.pending.append((future, self.loop.time() + self.timeout))
        self.transport.write(packed)
        if self._timer is None:
            self._timer = self.loop.call_later(self.timeout, self._check)
        return future

    def _check(self) -> None:
        """One timer for all: the oldest unanswered command past its deadline ends the
        connection (the following ones could only be answered after it)."""
        self._timer = None
        if not self.pending:
            return
        deadline = self.pending[0][1]
        if self.loop.time() >= deadline:
            self._abort(RedisTimeoutError(f"redis: no reply within {self.timeout:g}s"))
        else:
            self._timer = self.loop.call_at(deadline, self._check)

    def _abort(self, error: Exception) -> None:
        self.lost = self.lost or error
        if self.transport is not None:
            self.transport.abort()
        self._fail(error)

    def _fail(self, error: Exception) -> None:
        self.lost = self.lost or error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.pending:
            future = self.pending.popleft()[0]
            if not future.done():
                future.set_exception(error)


class RedisLane:
    """Connected on first use and again after a failure; every failure is a RedisError."""

    def __init__(self, params: dict[str, Any], timeout: float) -> None:
        self.params = params
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    @classmethod
    def for_url(cls, url: str, password: str | None, timeout: float) -> RedisLane | None:
        """The lane for a store URL, or None when the URL needs what only redis-py does."""
        params = parse_url(url)
        if not set(params) <= _SERVED:
            return None
        kind = params.get("connection_class")
        if kind is not None and kind is not UnixDomainSocketConnection:
            return None
        if password is not None:
            params["password"] = password
        return cls(dict(params), timeout)

    async def call(self, *args: Any) -> Any:
        """One command's reply (an error reply raises ResponseError)."""
        protocol = await self._ready()
        return await protocol.send(hiredis.pack_command(args))

    async def calls(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Several commands written at once; their replies in order (the first error
        reply raises ResponseError once all have arrived)."""
        protocol = await self._ready()
        futures = [protocol.send(hiredis.pack_command(command)) for command in commands]
        replies = await asyncio.gather(*futures, return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    async def script(
        self, sha: str, source: str | bytes | memoryview, keys: list[Any], args: list[Any]
    ) -> Any:
        """EVALSHA, and EVAL (which caches the script) when Redis does not know it."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.call("EVAL", source, len(keys), *keys, *args)

    async def _ready(self) -> _Protocol:
        """The open connection, or a new one when there is none or it was lost."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        return protocol

    async def _connect(self) -> _Protocol:
        """One attempt at a time, shared: callers arriving while one is under way take
        its outcome.  (Taking turns, each would wait for every attempt before its own:
        against an unreachable Redis, 16 waiting webhooks x the connect timeout.)"""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._opened)
        return await asyncio.shield(self._connecting)

    def _opened(self, attempt: asyncio.Task[_Protocol]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._protocol = attempt.result()

    async def _open(self) -> _Protocol:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.abort()
        self._protocol = None
        loop = asyncio.get_running_loop()
        protocol = _Protocol(self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                if "path" in self.params:
                    await loop.create_unix_connection(lambda: protocol, self.params["path"])
                else:
                    host, port = self.params.get("host", "localhost"), self.params.get("port")
                    await loop.create_connection(lambda: protocol, host, port or 6379)
                await self._handshake(protocol)
        except TimeoutError:
            self._close(protocol)
            raise RedisTimeoutError(f"redis: not connected within {self.timeout:g}s") from None
        except OSError as exc:
            self._close(protocol)
            raise RedisConnectionError(f"redis: cannot connect: {exc}") from None
        except BaseException:
            self._close(protocol)
            raise
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        password, username = self.params.get("password"), self.params.get("username")
        if password is not None:
            auth: tuple[Any, ...] = ("AUTH", username, password) if username else ("AUTH", password)
            await protocol.send(hiredis.pack_command(auth))
        if self.params.get("db"):
            select: tuple[Any, ...] = ("SELECT", int(self.params["db"]))
            await protocol.send(hiredis.pack_command(select))

    @staticmethod
    def _close(protocol: _Protocol) -> None:
        if protocol.transport is not None:
            protocol.transport.abort()

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._connecting
        if self._protocol is not None:
            self._close(self._protocol)
            self._protocol = None
