"""A recovery whose backfill needs approval and is denied (by an approver, or by the
approval timeout): no run was triggered, so nothing is verified.  The incident says
so (its verification record, the timeline, the page), the resolution note in the
Slack thread names who denied it and the missed window that stays missing, and the
incident resolves as docs/responder.md describes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from feedguard.responder import incidents as inc
from feedguard.responder import note_slots, progress
from feedguard.responder import verification_polls as polls
from feedguard.responder import verified_recovery as vr
from feedguard.responder.config import ResponderConfig

from .support.fake_airflow2 import FakeAirflow2
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import (
    T0,
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    start_responder,
)
from .test_verified_recovery import airflow2_config

Doc = dict[str, Any]
ALICE = "alice-token-0123456789"
SLACK_TOKEN = "xoxb-denied-backfill"
STEP = "recovery:provider-down:0"
PLAN = vr.Plan("external_dbt_outputs", 60.0, 3600.0, 600.0)


def gated_playbooks(**gate: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "provider-down",
            "matchers": ['alertname="ExternalProviderDown"'],
            "firing": [],
            "resolved": [{"action": "trigger_backfill", "approval": "required", **gate}],
        }
    ]


def config(
    tmp_path: Path, airflow_url: str, slack: FakeSlack, *, verification: bool = True, **gate: Any
) -> ResponderConfig:
    return airflow2_config(
        tmp_path,
        airflow_url,
        playbooks=gated_playbooks(**gate),
        approvals={"approvers": [{"name": "alice", "token": ALICE}]},
        verification={"enabled": verification},
        notes={"slack_token": SLACK_TOKEN, "base_url": slack.api_url},
    )


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=SLACK_TOKEN) as fake:
        yield fake


@pytest.fixture
async def airflow(aiohttp_server: Any) -> tuple[FakeAirflow2, str]:
    fake = FakeAirflow2(username="admin", password="secret")
    fake.add_dag("external_data_backfill")
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


async def recover_to_the_gate(r: Responder, clock: FakeClock) -> Doc:
    """MISO down from T0 for 10 minutes, then recovered (no health probe): the backfill
    step waits for a decision."""
    firing = alert("MISO", starts_at=clock.now - 60)
    assert (await r.post(notification([firing]))).status == 200
    await r.tick()
    clock.advance(600)
    assert (await r.post(notification([resolved(firing, clock.now)]))).status == 200
    await r.tick()
    doc = await r.incident("MISO")
    step = next(s for s in doc["steps"] if s["id"] == STEP)
    assert step["status"] == "awaiting_approval", doc["timeline"]
    return doc


def resolution_note(slack: FakeSlack, ident: str) -> str:
    (note,) = slack.posts_of(ident, "resolution:0")
    (root,) = slack.posts_of(ident, "initial:0")
    assert note.thread_ts == root.ts  # in the incident's thread
    return note.text


async def test_a_backfill_denied_through_the_api_is_said_not_verified(
    tmp_path: Path, airflow: tuple[FakeAirflow2, str], slack: FakeSlack
) -> None:
    fake_airflow, airflow_url = airflow
    clock = FakeClock()
    async with start_responder(config(tmp_path, airflow_url, slack), clock=clock) as r:
        doc = await recover_to_the_gate(r, clock)
        clock.advance(120)
        url = f"{r.url}/api/v1/incidents/{doc['id']}/steps/{quote(STEP, safe='')}/deny"
        async with r.session.post(url, headers={"Authorization": f"Bearer {ALICE}"}) as answer:
            assert answer.status == 200
        await r.tick()
        await r.tick()  # the resolution note
        doc = await r.incident("MISO")
        async with r.session.get(f"{r.url}/incidents/{doc['id']}") as response:
            page = await response.text()

    assert fake_airflow.runs == []  # nothing was triggered
    assert doc["state"] == "resolved", doc["timeline"]
    verification = doc["verification"]
    assert verification["outcome"] == "denied"
    assert verification["stage"] is None
    assert verification["steps"] == []
    assert verification["denied"] == {
        "step": STEP,
        "by": "alice",
        "via": "api",
        "at": T0 + 720,
        "at_iso": "2026-09-21T14:25:20Z",
    }
    # The window trigger_backfill would have covered: the open (no last success
    # known) to the recovery.
    assert (verification["missed_window"]["start_at"], verification["missed_window"]["end_at"]) == (
        T0,
        T0 + 600,
    )
    reason = (
        f"backfill step {STEP} (trigger_backfill) was denied by alice (via api): no run was "
        "triggered, so nothing was verified; the missed window 2026-09-21T14:13:20Z to "
        "2026-09-21T14:23:20Z stays missing"
    )
    assert verification["reason"] == reason
    events = [e["event"] for e in doc["timeline"]]
    assert f"not verified: {reason}" in events
    assert events.index(f"step {STEP} (trigger_backfill) denied") < events.index(
        f"not verified: {reason}"
    )
    assert "<dt>Outcome</dt><dd>denied: backfill step" in page
    assert "not triggered (denied)" in page

    text = resolution_note(slack, doc["id"])
    assert (
        "*Data backfill:* NOT RUN: denied by alice (via api) at 2026-09-21 14:25 UTC, so "
        "nothing was verified; the missed window 2026-09-21 14:13 UTC to 2026-09-21 14:23 UTC "
        "stays missing: trigger the backfill by hand if the data is needed"
    ) in text
    assert not slack.posts_of(doc["id"], "verification:0")  # the resolution note said it


async def test_a_backfill_denied_by_the_approval_timeout_says_so(
    tmp_path: Path, airflow: tuple[FakeAirflow2, str], slack: FakeSlack
) -> None:
    fake_airflow, airflow_url = airflow
    clock = FakeClock()
    settings = config(tmp_path, airflow_url, slack, approval_timeout_minutes=5)
    async with start_responder(settings, clock=clock) as r:
        await recover_to_the_gate(r, clock)
        clock.advance(300)
        await r.tick()
        await r.tick()
        doc = await r.incident("MISO")
    assert fake_airflow.runs == []
    assert doc["state"] == "resolved", doc["timeline"]
    denied = doc["verification"]["denied"]
    assert (denied["by"], denied["via"]) == ("timeout", "timeout")
    assert (
        "denied by the approval timeout (on_timeout deny): no run was triggered"
        in (doc["verification"]["reason"])
    )
    text = resolution_note(slack, doc["id"])
    assert "*Data backfill:* NOT RUN: denied by the approval timeout (on_timeout deny) at " in text
    assert "stays missing" in text


async def test_without_verification_the_note_still_names_the_missed_window(
    tmp_path: Path, airflow: tuple[FakeAirflow2, str], slack: FakeSlack
) -> None:
    _, airflow_url = airflow
    clock = FakeClock()
    settings = config(tmp_path, airflow_url, slack, verification=False)
    async with start_responder(settings, clock=clock) as r:
        doc = await recover_to_the_gate(r, clock)
        url = f"{r.url}/api/v1/incidents/{doc['id']}/steps/{quote(STEP, safe='')}/deny"
        async with r.session.post(url, headers={"Authorization": f"Bearer {ALICE}"}) as answer:
            assert answer.status == 200
        await r.tick()
        await r.tick()
        doc = await r.incident("MISO")
    assert doc["state"] == "resolved"
    assert doc["verification"] is None  # switched off: nothing recorded as verification
    assert "NOT RUN: denied by alice (via api)" in resolution_note(slack, doc["id"])


# --- pure -------------------------------------------------------------------------------


def denied_doc(last_success_before: float | None = None) -> Doc:
    doc = inc.new_incident("MISO-1", "MISO", 1000.0, last_success_before)
    doc["state"] = inc.RECOVERING
    doc["recovery"] = {"streak": 2, "steps_enqueued": True}
    doc["recovered_at"] = 4600.0
    inc.enqueue(doc, "recovery", "down", [{"action": "trigger_backfill", "approval": "required"}])
    item = doc["work"][0]
    item["status"] = "denied"
    item["decision"] = {"decision": "denied", "by": "bob", "via": "page", "at": 4700.0}
    return doc


def test_settle_records_the_denial_once_and_resolves() -> None:
    doc = denied_doc(last_success_before=400.0)
    assert progress.settle(doc, 4800.0, notes=True, verify=PLAN)
    assert doc["state"] == inc.RESOLVED
    verification = doc["verification"]
    assert verification["outcome"] == vr.DENIED
    assert verification["missed_window"] == {"start_at": 400.0, "end_at": 4600.0}
    assert "denied by bob (via page)" in verification["reason"]
    assert "1970-01-01T00:06:40Z to 1970-01-01T01:16:40Z stays missing" in verification["reason"]
    assert not polls.due(doc, 10_000.0)  # nothing to poll
    assert not progress.settle(doc, 4900.0, notes=True, verify=PLAN)  # once
    assert sum(e["event"].startswith("not verified: ") for e in doc["timeline"]) == 1
    # The resolution note is due (it says so); there is no follow-up reply to wait for.
    doc["note_slots"] = ["initial:0"]
    assert note_slots.due_notes(doc, 4900.0, 3600) == [("resolution", 0)]
    note_slots.note_done(doc, "resolution:0", {}, None, 4910.0)
    assert doc["live"] is False
