"""The incident ledger: one interface, an SQLite and a Redis implementation.

Everything the responder must not forget or do twice goes through here:
alert transitions already seen, the inbox of transitions not yet applied,
incidents and resource claims (JSON documents changed atomically), once-only
claims (note slots) and leases (who runs an incident's steps now).
"""

from __future__ import annotations

from .base import Ack, InvalidValue, LeaseLost, Ref, Store, StoreUnavailable, Updater

__all__ = [
    "Ack",
    "InvalidValue",
    "LeaseLost",
    "Ref",
    "Store",
    "StoreUnavailable",
    "Updater",
    "open_store",
]


def open_store(config: object) -> Store:
    """The store the configuration asks for (not yet opened)."""
    from ..config import ResponderConfig

    assert isinstance(config, ResponderConfig)
    settings = config.store
    if settings.backend == "redis":
        from .redis import RedisStore

        assert config.redis is not None  # ResponderConfig checks it
        return RedisStore(
            config.redis.url,
            password=config.redis_password(),
            prefix=settings.key_prefix,
            socket_timeout=config.redis.socket_timeout_seconds,
            dedupe_ttl_seconds=settings.dedupe_ttl_seconds,
        )
    from .sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path, dedupe_ttl_seconds=settings.dedupe_ttl_seconds)
