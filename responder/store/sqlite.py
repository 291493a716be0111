"""SQLite store: the embedded default for one replica, durable across restarts.

Every call runs on one dedicated thread (never on the event loop); each
operation is one transaction, so a read-modify-write is atomic.
"""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .base import (
    Ack,
    Doc,
    InvalidValue,
    LeaseLost,
    ManyUpdater,
    Ref,
    Store,
    StoreUnavailable,
    StoreUnusable,
)

T = TypeVar("T")
PRUNE_EVERY = 1000  # notifications between two prunings of old transition keys

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transitions (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox_urgent (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, live INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS docs_live ON docs (kind, live);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL
);
"""


class SqliteStore(Store):
    def __init__(self, path: str, dedupe_ttl_seconds: float = 30 * 86400.0) -> None:
        self.path = path
        self.dedupe_ttl_seconds = dedupe_ttl_seconds
        self._records = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise StoreUnavailable("store is closed")
            try:
                return fn(self._db)
            except BaseException as exc:
                # Whatever failed, the connection leaves no transaction open: the
                # next caller must not find itself inside this one's BEGIN.
                if self._db.in_transaction:
                    self._db.rollback()
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"sqlite: {exc}") from exc
                if isinstance(exc, UnicodeEncodeError):
                    raise InvalidValue(f"not storable: {exc.reason}") from None
                raise

        # In the caller's context (as asyncio.to_thread does): a change function's
        # timeline entries carry the caller's trace_id (incidents.add_event).
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._thread, context.run, call)

    def _lock(self) -> None:
        """Hold ``<path>.lock`` for as long as the store is open: one responder per
        file (leases of a previous run are deleted at open, which is only right
        when no other process is running on the same file)."""
        path = f"{self.path}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreUnusable(
                f"sqlite {self.path}: another feedguard-responder is using this file"
                f" (it holds {path}); one responder per SQLite file"
            ) from None
        self._lock_fd = fd

    async def open(self) -> None:
        def connect() -> None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._lock()
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a 2xx to Alertmanager means the transition survives a power cut.
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            # One replica by definition: leases of a previous run are stale.
            db.execute("DELETE FROM leases")
            self._prune(db)
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, connect)
        except (sqlite3.Error, OSError) as exc:
            self._unlock()
            # A local file that cannot be opened will not heal by waiting.
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise StoreUnusable(f"sqlite {self.path}: cannot open: {reason}") from exc

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    async def close(self) -> None:
        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._unlock()

        await asyncio.get_running_loop().run_in_executor(self._thread, disconnect)
        # Joining the thread blocks: not on the event loop either.
        await asyncio.to_thread(self._thread.shutdown, True)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def record_transitions(
        self, items: Sequence[tuple[str, Doc]], urgent: Collection[str] = ()
    ) -> list[bool]:
        def run(db: sqlite3.Connection) -> list[bool]:
            now = time.time()
            self._records += 1
            if self._records % PRUNE_EVERY == 0:
                self._prune(db)
            result = []
            db.execute("BEGIN IMMEDIATE")
            for key, payload in items:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO transitions (key, at) VALUES (?, ?)", (key, now)
                )
                new = cursor.rowcount == 1
                if new:
                    table = _lane(key in urgent)
                    db.execute(f"INSERT INTO {table} (body) VALUES (?)", (json.dumps(payload),))
                result.append(new)
            db.execute("COMMIT")
            return result

        return await self._run(run)

    def _prune(self, db: sqlite3.Connection) -> None:
        """Forget transitions older than the dedupe window (Redis keys expire likewise)."""
        db.execute("DELETE FROM transitions WHERE at < ?", (time.time() - self.dedupe_ttl_seconds,))

    async def inbox_peek(self, limit: int, *, urgent: bool = False) -> list[Doc]:
        table = _lane(urgent)

        def run(db: sqlite3.Connection) -> list[Doc]:
            rows = db.execute(f"SELECT body FROM {table} ORDER BY seq LIMIT ?", (limit,))
            return [json.loads(row[0]) for row in rows.fetchall()]

        return await self._run(run)

    async def inbox_stats(self) -> tuple[int, float | None]:
        def run(db: sqlite3.Connection) -> tuple[int, float | None]:
            depth = 0
            oldest: list[float] = []
            for table in (_lane(True), _lane(False)):
                depth += db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                row = db.execute(f"SELECT body FROM {table} ORDER BY seq LIMIT 1").fetchone()
                at = _received_at(row[0] if row else None)
                if at is not None:
                    oldest.append(at)
            return int(depth), min(oldest, default=None)

        return await self._run(run)

    async def get(self, kind: str, key: str) -> Doc | None:
        return await self._run(lambda db: _select(db, kind, key))

    async def list(self, kind: str, *, live_only: bool = False) -> list[Doc]:
        def run(db: sqlite3.Connection) -> list[Doc]:
            if live_only:
                rows = db.execute(
                    "SELECT body FROM docs WHERE kind = ? AND live = 1 ORDER BY key", (kind,)
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT body FROM docs WHERE kind = ? ORDER BY key", (kind,)
                ).fetchall()
            return [_loads(row[0]) for row in rows]

        return await self._run(run)

    async def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, Doc | None]:
        def run(db: sqlite3.Connection) -> dict[str, Doc | None]:
            return {key: _select(db, kind, key) for key in keys}

        return await self._run(run) if keys else {}

    async def update_many(
        self, refs: Sequence[Ref], fn: ManyUpdater[Any], *, ack: Ack | None = None
    ) -> Any:
        lease = ack.lease if ack is not None else None

        def run(db: sqlite3.Connection) -> Any:
            db.execute("BEGIN IMMEDIATE")
            if lease is not None:
                row = db.execute(
                    "SELECT owner, expires FROM leases WHERE name = ?", (lease[0],)
                ).fetchone()
                # An expired lease still held by the caller is not taken by anyone: fine.
                if row is None or row[0] != lease[1]:
                    db.execute("ROLLBACK")
                    raise LeaseLost(f"lease {lease[0]} is no longer {lease[1]}'s")
            new, result = fn({(kind, key): _select(db, kind, key) for kind, key in refs})
            for (kind, key), doc in new.items():
                _write(db, kind, key, doc)
            if ack is not None:
                _drop_oldest(db, _lane(ack.urgent), ack.entries)
            db.execute("COMMIT")
            return result

        return await self._run(run)

    async def claim_once(self, key: str) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO claims (key, at) VALUES (?, ?)", (key, time.time())
            )
            return cursor.rowcount == 1

        return await self._run(run)

    async def acquire(self, name: str, owner: str, ttl_seconds: float) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            now = time.time()
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                db.execute("COMMIT")
                return False
            db.execute(
                "INSERT OR REPLACE INTO leases (name, owner, expires) VALUES (?, ?, ?)",
                (name, owner, now + ttl_seconds),
            )
            db.execute("COMMIT")
            return True

        return await self._run(run)

    async def release(self, name: str, owner: str) -> None:
        await self._run(
            lambda db: db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
        )


def _lane(urgent: bool) -> str:
    """The inbox table of a lane (a constant: safe to put in the SQL text)."""
    return "inbox_urgent" if urgent else "inbox"


def _drop_oldest(db: sqlite3.Connection, table: str, count: int) -> None:
    db.execute(
        f"DELETE FROM {table} WHERE seq IN (SELECT seq FROM {table} ORDER BY seq LIMIT ?)",
        (count,),
    )


def _select(db: sqlite3.Connection, kind: str, key: str) -> Doc | None:
    row = db.execute("SELECT body FROM docs WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return None if row is None else _loads(row[0])


def _write(db: sqlite3.Connection, kind: str, key: str, doc: Doc) -> None:
    db.execute(
        "INSERT OR REPLACE INTO docs (kind, key, body, live) VALUES (?, ?, ?, ?)",
        (kind, key, json.dumps(doc), 1 if doc.get("live") else 0),
    )


def _received_at(raw: str | bytes | None) -> float | None:
    if raw is None:
        return None
    value = json.loads(raw).get("received_at")
    return float(value) if isinstance(value, int | float) else None


def _loads(text: str) -> Doc:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
