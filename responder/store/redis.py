"""Redis store: several replicas share one Redis; every write is atomic.

Transition dedupe plus inbox append is one Lua script (one round trip per
webhook); documents are changed with WATCH/MULTI and retried on conflict;
leases are ``SET NX PX`` released and renewed by owner-checking scripts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, WatchError

from .base import (
    Ack,
    Doc,
    InvalidValue,
    LeaseLost,
    ManyUpdater,
    Ref,
    Store,
    StoreUnavailable,
)
from .lane import RedisLane
from .memo import QUEUED_KEPT, QueuedEntries, SeenKeys
from .packing import fast_packing

# KEYS[1] = inbox list, KEYS[2] = urgent inbox list, KEYS[3..] = transition keys;
# ARGV[1] = ttl ms, ARGV[3..] = payloads, each after a one-byte lane ("u": urgent).
# The new entries go to each list in one RPUSH per thousand, in order (half the
# script's calls).
_RECORD = """
local result = {}
local lanes = {{}, {}}
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    local lane = lanes[1]
    if string.byte(ARGV[i], 1) == 117 then lane = lanes[2] end
    lane[#lane + 1] = string.sub(ARGV[i], 2)
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
end
for n = 1, 2 do
  -- unpack() is bounded by Lua's C stack (8000): a storm's notification holds more.
  for first = 1, #lanes[n], 1000 do
    redis.call('RPUSH', KEYS[n], unpack(lanes[n], first, math.min(first + 999, #lanes[n])))
  end
end
return result
"""

_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# Notifications written together in one script call at most (bounds the call's size).
_MAX_BATCH = 64
# One caller's encoded (transition key, payload) pairs and the future it waits on.
_Pending = tuple[list[tuple[bytes, bytes]], "asyncio.Future[list[bool]]"]


class RedisStore(Store):
    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        prefix: str = "feedguard:",
        socket_timeout: float = 2.0,
        dedupe_ttl_seconds: float = 30 * 86400.0,
        lane: bool = True,
    ) -> None:
        """``lane`` False: every command through redis-py, as a URL the lane does not
        serve (``rediss://``) gets."""
        self.url = url
        self.prefix = prefix
        self.dedupe_ttl_ms = int(dedupe_ttl_seconds * 1000)
        self.client: aioredis.Redis = fast_packing(
            aioredis.Redis.from_url(
                url,
                password=password,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
            )
        )
        # The hot path's commands go through one pipelined connection (lane.py) when
        # the URL allows; None: everything through redis-py.
        self._lane = RedisLane.for_url(url, password, socket_timeout) if lane else None
        self._record = self.client.register_script(_RECORD)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._batch: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        # Keys this replica saw written: a re-send is answered without a round trip.
        # Kept far shorter than the keys' TTL in Redis, so it never outlives them.
        self._seen = SeenKeys(max_keys=100_000, ttl_seconds=min(3600.0, dedupe_ttl_seconds / 2))
        self._queued = QueuedEntries(max_entries=QUEUED_KEPT)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def open(self) -> None:
        await self.ping()
        if self._lane is not None:
            # Connected and authenticated at start: the first webhook is not the one
            # that finds out, and it costs no more than the next.
            try:
                await self._lane.call("PING")
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"redis: {exc}") from exc

    async def close(self) -> None:
        if self._lane is not None:
            await self._lane.close()
        await self.client.aclose()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def _call(self, *command: Any) -> Any:
        """A command without connection state: through the lane when there is one."""
        if self._lane is not None:
            return await self._lane.call(*command)
        return await self.client.execute_command(*command)  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def _script(self, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
        """One of the store's scripts: through the lane when there is one."""
        if self._lane is not None:
            return await self._lane.script(script.sha, script.script, keys, args)
        return await script(keys=keys, args=args)

    async def record_transitions(
        self, items: Sequence[tuple[str, Doc]], urgent: Collection[str] = ()
    ) -> list[bool]:
        """Group commit: calls arriving while a write is in flight share the next script
        call, so concurrent webhooks cost one round trip together.  Each caller still
        returns only after its own transitions are written.

        Keys and payloads are encoded here, before joining a batch: a value that cannot
        be encoded fails only its own caller (InvalidValue), never the others."""
        if not items:
            return []
        unknown = [item for item in items if not self._seen.known(item[0])]
        if not unknown:
            return [False] * len(items)  # all recorded before: Alertmanager re-sends
        try:
            bodies = [_dumps(payload) for _, payload in unknown]
            encoded = [
                (self._key("transition", key).encode(), (b"u" if key in urgent else b"n") + body)
                for (key, _), body in zip(unknown, bodies, strict=True)
            ]
        except (UnicodeEncodeError, ValueError, TypeError) as exc:
            raise InvalidValue(f"not storable: {exc}") from None
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._batch.append((encoded, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        written = await future
        for (key, payload), body, new in zip(unknown, bodies, written, strict=True):
            self._seen.add(key)
            if new:
                self._queued.add(body, payload)
        flags = dict(zip((key for key, _ in unknown), written, strict=True))
        return [flags.get(key, False) for key, _ in items]

    async def _flush(self) -> None:
        # One turn of the loop lets requests already read reach this batch.
        await asyncio.sleep(0)
        while self._batch:
            batch, self._batch = self._batch[:_MAX_BATCH], self._batch[_MAX_BATCH:]
            keys: list[Any] = [self._key("inbox"), self._inbox(urgent=True)]
            args: list[Any] = [self.dedupe_ttl_ms, ""]
            for items, _ in batch:
                for key, payload in items:
                    keys.append(key)
                    args.append(payload)
            try:
                result = await self._script(self._record, keys, args)
            except (RedisError, OSError) as exc:
                self._fail(batch, StoreUnavailable(f"redis: {exc}"))
                continue
            except BaseException as exc:
                # Never leave a webhook waiting on a write that will not happen.
                self._fail(batch + self._batch, StoreUnavailable(f"redis: {exc!r}"))
                self._batch = []
                raise
            offset = 0
            for items, future in batch:
                if not future.done():
                    future.set_result([bool(f) for f in result[offset : offset + len(items)]])
                offset += len(items)

    @staticmethod
    def _fail(
        batch: list[_Pending],
        error: StoreUnavailable,
    ) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    def _inbox(self, *, urgent: bool) -> str:
        return self._key("inbox", "urgent") if urgent else self._key("inbox")

    async def inbox_peek(self, limit: int, *, urgent: bool = False) -> list[Doc]:
        try:
            raw: list[bytes] = await self._call("LRANGE", self._inbox(urgent=urgent), 0, limit - 1)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        taken = self._queued.take
        return [taken(item) or _loads(item) for item in raw]

    async def inbox_stats(self) -> tuple[int, float | None]:
        commands = [
            (command, self._inbox(urgent=urgent), *extra)
            for urgent in (True, False)
            for command, *extra in (("LLEN",), ("LINDEX", 0))
        ]
        try:
            if self._lane is not None:
                depth_u, first_u, depth, first = await self._lane.calls(*commands)
            else:
                async with self.client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    depth_u, first_u, depth, first = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        oldest = [at for at in (_received_at(first_u), _received_at(first)) if at is not None]
        return int(depth_u) + int(depth), min(oldest, default=None)

    async def get(self, kind: str, key: str) -> Doc | None:
        try:
            raw = await self._call("GET", self._key("doc", kind, key))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return None if raw is None else _loads(raw)

    async def list(self, kind: str, *, live_only: bool = False) -> list[Doc]:
        index = self._key("live" if live_only else "all", kind)
        try:
            members = await self.client.smembers(index)
            keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in members)
            if not keys:
                return []
            raw = await self.client.mget([self._key("doc", kind, k) for k in keys])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return [_loads(item) for item in raw if item is not None]

    async def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, Doc | None]:
        if not keys:
            return {}
        try:
            raw = await self._call("MGET", *[self._key("doc", kind, key) for key in keys])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        found = zip(keys, raw, strict=True)
        return {key: None if item is None else _loads(item) for key, item in found}

    async def update_many(
        self, refs: Sequence[Ref], fn: ManyUpdater[Any], *, ack: Ack | None = None
    ) -> Any:
        """WATCH the documents, one MGET, then one MULTI/EXEC with every write and the
        ack's LTRIM: three round trips whatever the number of documents.  The ack's lease
        key is watched and read with them, so a lease taken over meanwhile fails the
        EXEC and is then seen (LeaseLost).  (The inbox itself is not watched: webhooks
        only append to it, and only the inbox lease holder trims it.)"""
        keys = [self._key("doc", kind, key) for kind, key in refs]
        lease = ack.lease if ack is not None else None
        if lease is not None:
            keys.append(self._key("lease", lease[0]))
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        raws: list[Any] = []
                        if keys:
                            await pipe.watch(*keys)
                            raws = await pipe.mget(keys)
                        if lease is not None:
                            holder = raws.pop()
                            if holder is None or holder.decode() != lease[1]:
                                await pipe.unwatch()  # type: ignore[no-untyped-call]  # untyped in redis-py
                                raise LeaseLost(f"lease {lease[0]} is no longer {lease[1]}'s")
                        docs = {
                            ref: None if raw is None else _loads(raw)
                            for ref, raw in zip(refs, raws, strict=True)
                        }
                        new, result = fn(docs)
                        if not new and ack is None:
                            await pipe.unwatch()  # type: ignore[no-untyped-call]  # untyped in redis-py
                            return result
                        pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                        for (kind, key), doc in new.items():
                            self._queue_write(pipe, kind, key, doc)
                        if ack is not None:
                            pipe.ltrim(self._inbox(urgent=ack.urgent), ack.entries, -1)
                        await pipe.execute()
                        return result
                    except WatchError:
                        continue
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def _queue_write(self, pipe: Any, kind: str, key: str, doc: Doc) -> None:
        """Queue a document's write and its index entries on a MULTI pipeline."""
        pipe.set(self._key("doc", kind, key), _dumps(doc))
        pipe.sadd(self._key("all", kind), key)
        if doc.get("live"):
            pipe.sadd(self._key("live", kind), key)
        else:
            pipe.srem(self._key("live", kind), key)

    async def claim_once(self, key: str) -> bool:
        try:
            return bool(await self.client.set(self._key("claim", key), "1", nx=True))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        keys = [self._key("lease", name)]
        args: list[Any] = [owner, max(1, int(ttl_seconds * 1000))]
        try:
            got = await self._script(self._acquire, keys, args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return bool(got)

    async def release(self, name: str, owner: str) -> None:
        keys = [self._key("lease", name)]
        try:
            await self._script(self._release, keys, [owner])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc


# orjson: inbox entries and incident documents are (de)serialised several times per
# notification; stdlib json took ~7% of the responder's CPU under load.  What orjson
# refuses (integers beyond 64 bits, lone surrogates; NaN written by older versions)
# goes through the stdlib, so every value the store took before is still taken.


def _received_at(raw: bytes | None) -> float | None:
    received = None if raw is None else _loads(raw).get("received_at")
    return float(received) if isinstance(received, int | float) else None


def _dumps(value: Doc) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value).encode()


def _loads(raw: bytes | str) -> Doc:
    try:
        value = orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError
        value = json.loads(raw)
    assert isinstance(value, dict)
    return value
