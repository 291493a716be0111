"""Redis command packing in C (hiredis) for the asyncio client, where it is byte-identical.

redis-py's synchronous client packs commands with ``hiredis.pack_command`` when
hiredis is installed; its asyncio connections always pack in Python, which took
~25 us of CPU for the webhook's group-commit script call (about 40 arguments,
several kilobytes): a tenth of a webhook request's cost.  ``fast_packing`` swaps
a client's connection class for a subclass that hands hiredis only what it packs
exactly as redis-py would (bytes, ints, ASCII strings, a command name without a
space); anything else (floats, bools, non-ASCII or unencodable strings, memoryviews,
``CONFIG GET``-style names) goes through redis-py's own packer, errors included.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)


class _HiredisPacking(AbstractConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        for arg in args:
            kind = type(arg)
            if kind is bytes or kind is int or (kind is str and arg.isascii()):
                continue
            return super().pack_command(*args)
        # redis-py splits a command name such as "CONFIG GET" into its words.
        if not args or (b" " if type(args[0]) is bytes else " ") in args[0]:
            return super().pack_command(*args)
        return [hiredis.pack_command(args)]


class HiredisConnection(_HiredisPacking, Connection):
    pass


class HiredisSSLConnection(_HiredisPacking, SSLConnection):
    pass


class HiredisUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_FAST: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: HiredisConnection,
    SSLConnection: HiredisSSLConnection,
    UnixDomainSocketConnection: HiredisUnixConnection,
}


def fast_packing(client: aioredis.Redis) -> aioredis.Redis:
    """The client, its pool now making hiredis-packing connections (before any is made)."""
    pool = client.connection_pool
    pool.connection_class = _FAST.get(pool.connection_class, pool.connection_class)
    return client
