"""The incident lease's heartbeat: two replicas on one real redis-server, a short lease
(3 s), and a step that takes longer than it.

- While the step runs the heartbeat keeps the lease: the other replica, ticking,
  neither takes the incident over nor calls the action again.
- When the lease is lost (here: taken by another owner) the step is cancelled at
  once and nothing more is recorded by the replica that lost it.
- The inbox lease the same way: a replica whose lease is taken between two batches
  of a pass stops, and the new holder applies the rest, every alert once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import redis
import structlog.testing

from feedguard.responder.plugins import Outcome, StepContext, Target

from .conftest import make_catalog
from .support.responder import (
    CountingAction,
    FakeClock,
    Responder,
    alert,
    notification,
    responder_config,
    start_responder,
    wait_for,
)

LEASE = 3.0
CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})
PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [{"action": "throttle_api"}],
        "resolved": [{"revert": "all"}],
    }
]


class SlowThrottle:
    """An action whose apply waits until the test lets it finish."""

    name: ClassVar[str] = "throttle_api"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "kubernetes"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = 0
        self.finished = 0
        self.cancelled = 0

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        return [Target("throttle aurum-api", "k8s:cm:aurum-api")]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        self.started += 1
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return Outcome(previous="100")

    async def revert(self, ctx: StepContext, target: Target, previous: Any) -> Outcome:
        return Outcome()


def config(tmp_path: Path, redis_url: str, name: str) -> Any:
    return responder_config(
        tmp_path / name,
        catalog=CATALOG,
        playbooks=PLAYBOOKS,
        store="redis",
        redis_url=redis_url,
        redis={"url": redis_url, "socket_timeout_seconds": 1},
        # The step below takes longer than the lease; the call's own timeout does not.
        executor={"lease_seconds": LEASE, "timeout_seconds": 30, "attempts": 1},
    )


@contextlib.asynccontextmanager
async def step_running(
    tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Responder, Responder, SlowThrottle, str]]:
    """Two replicas; the first has opened an incident and its step is running."""
    clock = FakeClock()
    slow = SlowThrottle()
    actions = {slow.name: slow}
    async with (
        start_responder(config(tmp_path, redis_url, "a"), clock=clock, actions=actions) as first,
        start_responder(config(tmp_path, redis_url, "b"), clock=clock, actions=actions) as second,
    ):
        await first.post(notification([alert("ISO-NE")]))

        async def started() -> bool:
            return slow.started == 1

        await wait_for(started)
        incident_id = (await first.incidents())[0]["id"]
        yield first, second, slow, incident_id


def lease_holder(client: redis.Redis, incident_id: str) -> str | None:
    raw = client.get(f"feedguard:lease:incident:{incident_id}")
    return None if raw is None else raw.decode()


async def test_a_step_longer_than_the_lease_keeps_it(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    async with step_running(tmp_path, redis_url) as (first, second, slow, incident_id):
        holder = lease_holder(redis_client, incident_id)
        assert holder == first.engine.runner.owner

        # Two lease lengths pass with the step still running; the other replica
        # looks for work all along and finds the incident held every time.
        renewals_seen = 0
        last_ttl = redis_client.pttl(f"feedguard:lease:incident:{incident_id}")
        for _ in range(int(2 * LEASE / 0.25)):
            await second.engine.tick()
            ttl = redis_client.pttl(f"feedguard:lease:incident:{incident_id}")
            renewals_seen += ttl > last_ttl
            last_ttl = ttl
            assert lease_holder(redis_client, incident_id) == holder
            await asyncio.sleep(0.25)
        assert renewals_seen >= 2
        assert slow.started == 1
        assert slow.cancelled == 0

        slow.gate.set()

        async def stabilised() -> bool:
            return (await first.incident("ISO-NE"))["state"] == "stabilised"

        await wait_for(stabilised)
        await second.tick()
        incident = await first.incident("ISO-NE")
        assert [(a["action"], a["result"]) for a in incident["actions"]] == [
            ("throttle_api", "success")
        ]
        assert slow.started == 1
        assert slow.finished == 1
        assert lease_holder(redis_client, incident_id) is None  # released when done


async def test_losing_the_lease_cancels_the_step(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    async with step_running(tmp_path, redis_url) as (first, second, slow, incident_id):
        key = f"feedguard:lease:incident:{incident_id}"
        # Another owner holds the lease now (as after a pause longer than the lease).
        redis_client.set(key, "another-replica", px=int(LEASE * 1000))

        async def cancelled() -> bool:
            return slow.cancelled == 1

        await wait_for(cancelled, within=2 * LEASE)
        await first.settle()
        incident = await first.incident("ISO-NE")
        assert incident["actions"] == []  # the replica that lost it recorded nothing
        assert incident["state"] == "stabilising"
        assert lease_holder(redis_client, incident_id) == "another-replica"

        # Once that lease ends, the other replica takes the incident over.
        redis_client.delete(key)
        slow.gate.set()
        await second.tick()
        incident = await first.incident("ISO-NE")
        assert [(a["action"], a["result"]) for a in incident["actions"]] == [
            ("throttle_api", "success")
        ]
        assert incident["state"] == "stabilised"
        assert (slow.started, slow.finished, slow.cancelled) == (2, 1, 1)


# --- the inbox lease ------------------------------------------------------------------


def queued(client: redis.Redis) -> int:
    return int(client.llen("feedguard:inbox")) + int(client.llen("feedguard:inbox:urgent"))


async def test_a_replica_whose_inbox_lease_is_taken_mid_pass_stops_and_the_other_finishes(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    """Replica A applies a large inbox; its lease is taken (as after a pause longer than
    the lease) while it is between batches.  A writes nothing more and ends its pass
    with a warning; B, now holding the lease, applies the rest: every alert counted
    once, the inbox empty."""
    alerts_total, per_post = 8_000, 1_000
    lease_key = "feedguard:lease:inbox"
    actions = {"throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate")}
    async with (
        start_responder(config(tmp_path, redis_url, "a"), actions=actions) as first,
        start_responder(config(tmp_path, redis_url, "b"), actions=actions) as second,
    ):
        # Nobody applies while the inbox fills: a third owner holds its lease.
        redis_client.set(lease_key, "blocker", px=60_000)
        for start in range(0, alerts_total, per_post):
            batch = [alert("ISO-NE", instance=str(n)) for n in range(start, start + per_post)]
            assert (await second.post(notification(batch))).status == 200
        await first.settle()
        await second.settle()  # their kicks gave up: the inbox was held
        assert queued(redis_client) == alerts_total  # one of them in the urgent lane
        redis_client.delete(lease_key)

        with structlog.testing.capture_logs() as logs:
            applying = asyncio.ensure_future(first.engine.process_inbox())

            async def first_batch_applied() -> bool:
                return queued(redis_client) < alerts_total

            await wait_for(first_batch_applied, within=30)
            # A's lease ends and B takes it, while A is still between batches.
            redis_client.set(lease_key, second.engine.intake.owner, px=60_000)
            await asyncio.wait_for(applying, 30)
        left_by_first = queued(redis_client)
        assert 0 < left_by_first < alerts_total, "the lease was taken after A had finished"
        lost = "inbox lease lost; another replica applies the inbox"
        assert [e["log_level"] for e in logs if e["event"] == lost] == ["warning"]

        assert await second.engine.process_inbox() is not None
        await second.settle()
        assert queued(redis_client) == 0
        incident = await second.incident("ISO-NE")
        assert incident["alert_counts"]["total"] == alerts_total
        assert incident["alert_counts"]["firing"] == alerts_total
        assert len(await second.incidents()) == 1
