"""Notes survive a crash: two responder processes on one real redis-server and a local
Slack (tests/support/fake_slack.py); the replica posting a note is SIGKILLed.

- During a Slack 429 ``Retry-After`` wait: the heartbeat keeps the note's lease
  while the dead-to-be replica waits (the other replica, ticking, stays off);
  after the kill the survivor takes the note over once the lease ends, looks for
  it in ``conversations.history`` (not there), posts it once, and the resolution
  threads under it.
- After Slack took the post, before the replica heard the answer: the survivor
  finds the note by its metadata and does not post it again; the resolution
  threads under the note the dead replica posted.

The lease is 3 s and the tick 0.5 s here; what is asserted is order and state,
the takeover delay is printed (``-s``) for the record, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import redis
import yaml

from .support.fake_slack import FakeSlack, Message, running_fake_slack
from .support.replicas import Replica
from .support.responder import alert, notification, resolved

TOKEN = "xoxb-takeover-token"
BEARER = "takeover-webhook-token"
LEASE = 3.0
TICK = 0.5


def settings(tmp_path: Path, redis_url: str, slack: FakeSlack) -> dict[str, Any]:
    catalog = tmp_path / "external_providers.yml"
    catalog.write_text(
        yaml.safe_dump({"providers": [{"name": "ISO-NE", "datasets": ["lmp"], "dags": ["ingest"]}]})
    )
    return {
        "catalog_file": str(catalog),
        "dry_run": True,  # steps are only planned: this is about the notes
        "store": {"backend": "redis"},
        "redis": {"url": redis_url, "socket_timeout_seconds": 1},
        "executor": {"lease_seconds": LEASE},
        "scheduler": {"tick_seconds": TICK},
        "recovery": {"probes_required": 1, "probe_interval_seconds": 0},
        "evidence": {"enabled": False},
        "playbooks": [
            {
                "name": "provider-down",
                "matchers": ['alertname="ExternalProviderDown"'],
                "firing": [{"action": "pause_dags"}],
                "resolved": [{"revert": "all"}],
            }
        ],
        "notes": {
            "channel": "#data-platform",
            "base_url": slack.api_url,
            "max_retry_after_seconds": 120,
            "post_deadline_seconds": 300,
        },
    }


@contextlib.asynccontextmanager
async def two_replicas(
    tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[FakeSlack, Replica, Replica]]:
    async with running_fake_slack(token=TOKEN) as slack:
        config = settings(tmp_path, redis_url, slack)
        env = {"FEEDGUARD_NOTES_SLACK_TOKEN": TOKEN, "FEEDGUARD_WEBHOOK_BEARER_TOKEN": BEARER}
        first, second = (Replica.create(tmp_path, name, config, env) for name in ("a", "b"))
        try:
            yield slack, first, second
        finally:
            slack.release_posts()
            first.stop()
            second.stop()


async def post(replica: Replica, body: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{replica.url}/webhook/alertmanager",
            json=body,
            headers={"Authorization": f"Bearer {BEARER}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def get_json(replica: Replica, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(replica.url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def until(predicate: Callable[[], bool | Awaitable[bool]], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.05)


def calls(slack: FakeSlack) -> list[tuple[str, int]]:
    """Slack calls of the note's post, without each replica's start-up client check
    (auth.test), which runs in the background at its own moment."""
    return [
        (r.path.removeprefix("/api/"), r.status)
        for r in slack.requests
        if r.path != "/api/auth.test"
    ]


async def incident_of(replica: Replica) -> dict[str, Any]:
    rows = (await get_json(replica, "/api/v1/incidents"))["incidents"]
    assert len(rows) == 1
    return dict(await get_json(replica, f"/api/v1/incidents/{rows[0]['id']}"))


async def resolve_and_check_thread(
    slack: FakeSlack, survivor: Replica, firing: dict[str, Any], incident_id: str
) -> tuple[Message, Message]:
    """Resolve through the survivor; the resolution must reply in the initial note's thread."""
    await post(survivor, notification([resolved(firing)]))
    await until(lambda: len(slack.posts_of(incident_id, "resolution:0")) == 1)
    (initial,) = slack.posts_of(incident_id, "initial:0")
    (resolution,) = slack.posts_of(incident_id, "resolution:0")
    assert resolution.thread_ts == initial.ts
    assert resolution.reply_broadcast

    async def settled() -> bool:
        return (await incident_of(survivor))["state"] == "resolved"

    await until(settled)
    incident = await incident_of(survivor)
    assert incident["notes"]["slack_ts"] == initial.ts
    assert len([m for m in slack.messages if m.via == "api"]) == 2  # every note once
    return initial, resolution


async def test_sigkill_during_retry_after_the_survivor_posts_the_note_once(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    async with two_replicas(tmp_path, redis_url) as (slack, first, second):
        await first.start()
        slack.rate_limit_next(1, retry_after=100)  # longer than the test, within the bound
        firing = alert("ISO-NE")
        await post(first, notification([firing]))
        await until(lambda: ("chat.postMessage", 429) in calls(slack))
        incident_id = (await incident_of(first))["id"]
        lease_key = f"feedguard:lease:note:{incident_id}:initial:0"

        # The second replica runs; for two lease lengths it finds the note held.
        await second.start()
        renewals = 0
        last = redis_client.pttl(lease_key)
        deadline = time.monotonic() + 2 * LEASE
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            ttl = redis_client.pttl(lease_key)
            renewals += ttl > last
            last = ttl
        assert renewals >= 2  # kept by the heartbeat through the Retry-After wait
        assert slack.posts_of(incident_id, "initial:0") == []
        assert calls(slack) == [("chat.postMessage", 429)]

        first.kill()
        killed = time.monotonic()
        await until(lambda: len(slack.posts_of(incident_id, "initial:0")) == 1)
        posted = slack.requests[-1].at
        print(f"\ntakeover: note posted {posted - killed:.2f}s after SIGKILL (lease {LEASE:g}s)")

        # Looked first (name -> ID, then the channel since the attempt), then posted once.
        assert calls(slack) == [
            ("chat.postMessage", 429),
            ("conversations.list", 200),
            ("conversations.history", 200),
            ("chat.postMessage", 200),
        ]
        await resolve_and_check_thread(slack, second, firing, incident_id)


async def test_sigkill_after_slack_took_the_note_it_is_not_posted_again(
    tmp_path: Path, redis_url: str
) -> None:
    async with two_replicas(tmp_path, redis_url) as (slack, first, second):
        await first.start()
        slack.hold_posts()  # Slack keeps the note; its answer never reaches the poster
        firing = alert("ISO-NE")
        await post(first, notification([firing]))
        await until(lambda: slack.held == 1)
        incident_id = (await incident_of(first))["id"]
        (posted,) = slack.posts_of(incident_id, "initial:0")
        await second.start()
        first.kill()
        slack.release_posts()

        async def recorded() -> bool:
            events = {e["event"] for e in (await incident_of(second))["timeline"]}
            return "note posted: initial:0" in events

        await until(recorded)
        assert slack.posts_of(incident_id, "initial:0") == [posted]
        assert calls(slack) == [
            ("chat.postMessage", 200),
            ("conversations.list", 200),
            ("conversations.history", 200),
        ]
        initial, _ = await resolve_and_check_thread(slack, second, firing, incident_id)
        assert initial is posted
