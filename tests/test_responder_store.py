"""The store contract, the same for SQLite and Redis (a real redis-server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feedguard.responder.store import Ack, LeaseLost, Store
from feedguard.responder.store.redis import RedisStore
from feedguard.responder.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "redis", "redis-py"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """``redis-py``: the Redis store without its pipelined lane (what ``rediss://`` gets)."""
    if request.param.startswith("redis"):
        url = request.getfixturevalue("redis_url")
        backend: Store = RedisStore(url, lane=request.param == "redis")
    else:
        backend = SqliteStore(str(tmp_path / "store.db"))
    await backend.open()
    yield backend
    await backend.close()


async def test_transitions_are_recorded_once_and_queued_in_order(store: Store) -> None:
    first = await store.record_transitions([("a", {"n": 1}), ("b", {"n": 2})])
    again = await store.record_transitions([("b", {"n": 3}), ("c", {"n": 4})])
    assert first == [True, True]
    assert again == [False, True]
    assert await store.inbox_peek(10) == [{"n": 1}, {"n": 2}, {"n": 4}]
    await store.inbox_ack(2)
    assert await store.inbox_peek(10) == [{"n": 4}]


async def test_concurrent_duplicate_transitions_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.record_transitions([("x", {"n": i})]) for i in range(20))
    )
    assert sum(r[0] for r in results) == 1
    assert len(await store.inbox_peek(100)) == 1


async def test_update_is_atomic_under_concurrency(store: Store) -> None:
    def increment(doc: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
        doc = doc or {"count": 0, "live": True}
        doc["count"] += 1
        return doc, doc["count"]

    results = await asyncio.gather(*(store.update("counter", "c", increment) for _ in range(30)))
    assert sorted(results) == list(range(1, 31))
    assert (await store.get("counter", "c")) == {"count": 30, "live": True}


async def test_update_without_change_and_live_index(store: Store) -> None:
    assert await store.update("thing", "a", lambda doc: (None, "kept")) == "kept"
    assert await store.get("thing", "a") is None
    await store.update("thing", "a", lambda doc: ({"id": "a", "live": True}, None))
    await store.update("thing", "b", lambda doc: ({"id": "b", "live": False}, None))
    assert [d["id"] for d in await store.list("thing")] == ["a", "b"]
    assert [d["id"] for d in await store.list("thing", live_only=True)] == ["a"]
    await store.update("thing", "a", lambda doc: ({"id": "a", "live": False}, None))
    assert await store.list("thing", live_only=True) == []


async def test_get_many_reads_several_documents(store: Store) -> None:
    await store.update("thing", "a", lambda doc: ({"id": "a"}, None))
    assert await store.get_many("thing", ["a", "missing"]) == {"a": {"id": "a"}, "missing": None}
    assert await store.get_many("thing", []) == {}


async def test_update_many_writes_all_and_acks_the_batch_together(store: Store) -> None:
    items = [(f"k{n}", {"n": n}) for n in range(5)]
    await store.record_transitions(items, urgent={"k4"})
    await store.update("incident", "a", lambda doc: ({"id": "a", "n": 0, "live": True}, None))

    def change(docs: dict[tuple[str, str], Any]) -> tuple[dict[tuple[str, str], Any], str]:
        assert docs == {
            ("incident", "a"): {"id": "a", "n": 0, "live": True},
            ("incident", "b"): None,
            ("ignored", "recent"): None,
        }
        changed = {
            ("incident", "a"): {"id": "a", "n": 1, "live": False},
            ("incident", "b"): {"id": "b", "live": True},
        }
        return changed, "done"

    refs = [("incident", "a"), ("incident", "b"), ("ignored", "recent")]
    assert await store.update_many(refs, change, ack=Ack(3)) == "done"
    assert await store.get_many("incident", ["a", "b"]) == {
        "a": {"id": "a", "n": 1, "live": False},
        "b": {"id": "b", "live": True},
    }
    assert await store.get("ignored", "recent") is None  # unchanged: not written
    assert [d["id"] for d in await store.list("incident", live_only=True)] == ["b"]
    # The three oldest of the normal lane went with the writes; the urgent lane is intact.
    assert [e["n"] for e in await store.inbox_peek(10)] == [3]
    assert await store.inbox_peek(10, urgent=True) == [{"n": 4}]
    await store.update_many([], lambda docs: ({}, None), ack=Ack(1, urgent=True))
    assert await store.inbox_peek(10, urgent=True) == []


async def test_update_many_that_fails_changes_nothing(store: Store) -> None:
    """Applying a batch and dropping it from the inbox are one transaction: when the
    change fails, the batch stays queued and no document is written."""
    await store.record_transitions([("k", {"n": 1})])

    def broken(docs: dict[tuple[str, str], Any]) -> tuple[dict[tuple[str, str], Any], None]:
        raise RuntimeError("bug in the change")

    with pytest.raises(RuntimeError):
        await store.update_many([("incident", "a")], broken, ack=Ack(1))
    assert await store.inbox_peek(10) == [{"n": 1}]
    assert await store.get("incident", "a") is None
    # The store is still usable (no transaction left open).
    await store.update_many([("incident", "a")], lambda docs: ({}, None), ack=Ack(1))
    assert await store.inbox_peek(10) == []


async def test_update_many_under_a_lease_taken_over_writes_nothing(store: Store) -> None:
    """A batch applied under the inbox lease: once another owner has taken the lease
    (ours expired), the transaction writes nothing and keeps the batch queued."""
    await store.record_transitions([("k", {"n": 1})])
    assert await store.acquire("inbox", "replica-a", 0.05)

    def change(docs: dict[tuple[str, str], Any]) -> tuple[dict[tuple[str, str], Any], None]:
        return {("incident", "a"): {"id": "a"}}, None

    await asyncio.sleep(0.1)
    assert await store.acquire("inbox", "replica-b", 30)
    with pytest.raises(LeaseLost):
        await store.update_many(
            [("incident", "a")], change, ack=Ack(1, lease=("inbox", "replica-a"))
        )
    assert await store.get("incident", "a") is None
    assert await store.inbox_peek(10) == [{"n": 1}]
    # The lease's holder applies it.
    await store.update_many([("incident", "a")], change, ack=Ack(1, lease=("inbox", "replica-b")))
    assert await store.get("incident", "a") == {"id": "a"}
    assert await store.inbox_peek(10) == []


async def test_update_many_is_atomic_under_concurrency(store: Store) -> None:
    """Concurrent batch updates and single updates of the same documents lose nothing
    (Redis: WATCH conflicts are retried with fresh documents)."""
    refs = [("counter", "x"), ("counter", "y")]

    def both(docs: dict[tuple[str, str], Any]) -> tuple[dict[tuple[str, str], Any], None]:
        return {
            ref: {"count": (doc or {"count": 0})["count"] + 1} for ref, doc in docs.items()
        }, None

    def one(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
        return {"count": (doc or {"count": 0})["count"] + 1}, None

    await asyncio.gather(
        *(store.update_many(refs, both) for _ in range(15)),
        *(store.update("counter", "x", one) for _ in range(15)),
    )
    assert await store.get_many("counter", ["x", "y"]) == {"x": {"count": 30}, "y": {"count": 15}}


async def test_claim_once(store: Store) -> None:
    results = await asyncio.gather(*(store.claim_once("note:1:initial:0") for _ in range(10)))
    assert results.count(True) == 1
    assert await store.claim_once("note:1:update:1")


async def test_leases(store: Store) -> None:
    assert await store.acquire("incident:1", "a", 30)
    assert await store.acquire("incident:1", "a", 30)  # renew
    assert not await store.acquire("incident:1", "b", 30)
    await store.release("incident:1", "b")  # not the owner: no effect
    assert not await store.acquire("incident:1", "b", 30)
    await store.release("incident:1", "a")
    assert await store.acquire("incident:1", "b", 0.05)
    await asyncio.sleep(0.1)
    assert await store.acquire("incident:1", "a", 30)  # expired


async def test_sqlite_survives_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "durable.db")
    first = SqliteStore(path)
    await first.open()
    await first.record_transitions([("a", {"n": 1})])
    await first.update("incident", "i", lambda doc: ({"id": "i", "live": True}, None))
    assert await first.acquire("incident:i", "old-process", 300)
    await first.close()

    second = SqliteStore(path)
    await second.open()
    assert await second.record_transitions([("a", {"n": 1})]) == [False]
    assert await second.inbox_peek(10) == [{"n": 1}]
    assert await second.get("incident", "i") == {"id": "i", "live": True}
    # One replica by definition: a lease left by the previous process is gone.
    assert await second.acquire("incident:i", "new-process", 300)
    await second.close()


async def test_sqlite_forgets_transitions_after_the_dedupe_window(tmp_path: Path) -> None:
    path = str(tmp_path / "prune.db")
    store = SqliteStore(path, dedupe_ttl_seconds=0.05)
    await store.open()
    assert await store.record_transitions([("old", {"n": 1})]) == [True]
    await store.close()
    await asyncio.sleep(0.1)
    reopened = SqliteStore(path, dedupe_ttl_seconds=0.05)
    await reopened.open()  # prunes at start
    assert await reopened.record_transitions([("old", {"n": 1})]) == [True]
    await reopened.close()


async def test_inbox_stats_give_depth_and_oldest_received_at(store: Store) -> None:
    assert await store.inbox_stats() == (0, None)
    await store.record_transitions([("a", {"received_at": 100.5}), ("b", {"received_at": 101})])
    await store.record_transitions([("c", {"received_at": 102.0})])
    assert await store.inbox_stats() == (3, 100.5)
    await store.inbox_ack(2)
    assert await store.inbox_stats() == (1, 102.0)


async def test_urgent_lane_is_separate_and_counted(store: Store) -> None:
    items = [(f"k{n}", {"n": n, "received_at": 100.0 + n}) for n in range(4)]
    assert await store.record_transitions(items, urgent={"k2"}) == [True] * 4
    assert await store.inbox_peek(10, urgent=True) == [{"n": 2, "received_at": 102.0}]
    assert [e["n"] for e in await store.inbox_peek(10)] == [0, 1, 3]
    assert await store.inbox_stats() == (4, 100.0)
    await store.inbox_ack(2)
    assert await store.inbox_stats() == (2, 102.0)  # the urgent one is now the oldest
    await store.inbox_ack(1, urgent=True)
    assert await store.inbox_stats() == (1, 103.0)
    # Dedupe spans both lanes.
    assert await store.record_transitions([("k2", {"n": 9})], urgent={"k2"}) == [False]
    assert await store.inbox_peek(10, urgent=True) == []
