"""A replica stops mid-post with an incoming webhook, which cannot read the channel back.

Two replicas (in-process apps) on one real redis-server and the local Slack's
webhook.  The first one stops while posting the initial note; the second takes
the note over:

- it stopped waiting out a 429 ``Retry-After``: the incident says Slack refused
  the request and nothing went out since, so the survivor posts the note, once;
- it stopped after the webhook took the note, before the answer: no one can tell
  whether it is in the channel, so it is recorded as failed ("not confirmed"),
  never posted twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .conftest import make_catalog
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import (
    FakeClock,
    Responder,
    alert,
    counting_actions,
    notification,
    responder_config,
    start_responder,
    wait_for,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})


@contextlib.asynccontextmanager
async def first_stopped_mid_post(
    tmp_path: Path, redis_url: str, slack: FakeSlack, stopped_when: str
) -> AsyncIterator[tuple[Responder, str]]:
    """The first replica stopped while posting the initial note; yields the second
    replica (not ticked yet) and the incident id."""
    clock = FakeClock()
    notes = {
        "webhook_url": slack.webhook_url,
        "max_retry_after_seconds": 120,
        "post_deadline_seconds": 300,
    }

    def config(name: str) -> Any:
        return responder_config(
            tmp_path / name, catalog=CATALOG, store="redis", redis_url=redis_url, notes=notes
        )

    async with start_responder(config("b"), clock=clock, actions=counting_actions()) as second:
        async with start_responder(config("a"), clock=clock, actions=counting_actions()) as first:
            await first.post(notification([alert("ISO-NE")]))
            incident_id = (await wait_for(first.incidents))[0]["id"]

            async def stopped() -> bool:
                if stopped_when == "held":
                    return slack.held == 1
                doc = await first.engine.store.get("incident", incident_id)
                attempt = ((doc or {}).get("note_attempts") or {}).get("initial:0") or {}
                return attempt.get("state") == "waiting"

            await wait_for(stopped)
        # The first replica is gone, its post cancelled mid-way: nothing more recorded.
        slack.release_posts()
        yield second, incident_id


async def test_stopped_during_retry_after_the_note_is_posted_once(
    tmp_path: Path, redis_url: str
) -> None:
    async with running_fake_slack() as slack:
        slack.rate_limit_next(1, retry_after=100)
        async with first_stopped_mid_post(tmp_path, redis_url, slack, "waiting") as (second, _):
            assert slack.messages == []
            await second.tick()
            incident = await second.incident("ISO-NE")
    assert [m.via for m in slack.messages] == ["webhook"]
    assert "note posted: initial:0" in [e["event"] for e in incident["timeline"]]


async def test_stopped_after_the_webhook_took_it_the_note_is_not_posted_again(
    tmp_path: Path, redis_url: str
) -> None:
    async with running_fake_slack() as slack:
        slack.hold_posts()
        async with first_stopped_mid_post(tmp_path, redis_url, slack, "held") as (second, _):
            await second.tick()
            await second.tick()
            incident = await second.incident("ISO-NE")
    assert [m.via for m in slack.messages] == ["webhook"]  # the dead replica's, only
    (failed,) = [e for e in incident["timeline"] if e["event"] == "note failed: initial:0"]
    assert "not confirmed" in failed["error"]
    assert "incoming webhook cannot read the channel back" in failed["error"]
