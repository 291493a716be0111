"""Verified recovery as pure changes (runbook 5.3-5.4): settle into ``verifying`` once
the backfill is triggered, follow the run, wait for the suite, resolve or ask for
attention, which notes fall due and what the follow-up reply says.  No store, no
clock, no network."""

from __future__ import annotations

import copy
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedguard.core.catalog import parse_catalog
from feedguard.responder import incidents as inc
from feedguard.responder import note_slots, progress
from feedguard.responder import verification_polls as polls
from feedguard.responder import verified_recovery as vr
from feedguard.responder.actions import open_actions
from feedguard.responder.config import ResponderConfig
from feedguard.responder.notes.render import NoteRenderer
from feedguard.responder.notes.settings import NotesSettings
from feedguard.responder.online import check_quality_store
from feedguard.responder.payload import parse_notification
from feedguard.responder.plan import plan
from feedguard.responder.plugins import NoteRequest

from .conftest import make_catalog
from .support.fake_airflow2 import FakeAirflow2
from .support.otlp import OtlpReceiver
from .support.responder import (
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)

Doc = dict[str, Any]
DATA = Path(__file__).parent / "data" / "gx"
BACKFILL_PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [],
        "resolved": [{"action": "trigger_backfill"}],
    }
]

PLAN = vr.Plan(
    suite="external_dbt_outputs", poll_interval=60.0, backfill_timeout=3600.0, quality_timeout=600.0
)
RUN_ID = "feedguard__backfill__ISO-NE__ISO-NE-100-abc"
T = 1000.0  # the resolved steps finished


def recovered(result: str = "success") -> Doc:
    """An incident whose resolved steps ran: the backfill trigger ended with ``result``."""
    doc = inc.new_incident("ISO-NE-100-abc", "ISO-NE", 100.0, None)
    doc["state"] = inc.RECOVERING
    doc["recovery"] = {"streak": 2, "steps_enqueued": True}
    doc["alerts"]["f1"] = {"alertname": "ExternalProviderDown", "status": "resolved"}
    inc.enqueue(doc, "recovery", "down", [{"action": "trigger_backfill"}])
    doc["work"][0]["status"] = "done"
    doc["actions"].append(
        {
            "key": "recovery:down:0|trigger",
            "work": "recovery:down:0",
            "action": "trigger_backfill",
            "target": "trigger DAG external_data_backfill for ISO-NE",
            "resource": None,
            "target_params": {"dag_id": "external_data_backfill", "dag_run_id": RUN_ID},
            "phase": "recovery",
            "result": result,
            "at": T,
            "detail": (
                {"dag_id": "external_data_backfill", "dag_run_id": RUN_ID, "state": "queued"}
                if result == "success"
                else {"why": "dry run"}
            ),
        }
    )
    return doc


def verifying() -> Doc:
    doc = recovered()
    assert progress.settle(doc, T, notes=True, verify=PLAN)
    return doc


def events(doc: Doc) -> list[str]:
    return [e["event"] for e in doc["timeline"]]


def passed_suite(run_time: float) -> polls.SuitePoll:
    return polls.SuitePoll(True, success=True, run_time=run_time, unsuccessful=0, evaluated=3)


def test_without_verification_the_recovered_incident_resolves_as_before() -> None:
    doc = recovered()
    assert progress.settle(doc, T, notes=True, verify=None)
    assert doc["state"] == inc.RESOLVED
    assert doc.get("verification") is None


def test_a_triggered_backfill_is_followed_before_resolving() -> None:
    doc = verifying()
    assert doc["state"] == inc.VERIFYING
    assert doc["resolved_at"] is None
    assert doc["live"] is True
    verification = doc["verification"]
    assert verification["stage"] == vr.BACKFILL
    assert verification["backfill"]["dag_run_id"] == RUN_ID
    assert verification["backfill"]["dag_id"] == "external_data_backfill"
    assert verification["deadline"] == T + PLAN.backfill_timeout
    assert verification["next_poll_at"] == T  # the first poll right away
    assert any(RUN_ID in e and "external_dbt_outputs" in e for e in events(doc))
    # Settling again is a no-op: the state machine stays put while verifying.
    assert not progress.settle(doc, T + 1, notes=True, verify=PLAN)
    assert polls.due(doc, T)


def test_a_running_backfill_is_polled_again_after_the_interval() -> None:
    doc = verifying()
    assert polls.run_polled(doc, polls.RunPoll("running", started_at=T + 5), T + 10)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["backfill"]["state"] == "running"
    assert doc["verification"]["next_poll_at"] == T + 10 + PLAN.poll_interval
    assert not polls.due(doc, T + 20)
    assert polls.due(doc, T + 70)


def test_a_successful_run_moves_on_to_the_suite_with_its_own_bound() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 720), T + 800)
    verification = doc["verification"]
    assert verification["stage"] == vr.QUALITY
    assert verification["backfill"]["duration_seconds"] == 720
    assert verification["deadline"] == T + 800 + PLAN.quality_timeout
    assert f"backfill run {RUN_ID} succeeded in 12 min" in events(doc)
    assert doc["state"] == inc.VERIFYING


def test_a_suite_result_from_before_the_backfill_ended_does_not_count() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 720), T + 800)
    assert polls.suite_polled(doc, passed_suite(T + 700), T + 800)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["suite"]["success"] is None


def test_a_newer_passing_suite_resolves_the_incident() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 720), T + 800)
    assert polls.suite_polled(doc, passed_suite(T + 900), T + 960)
    assert doc["state"] == inc.RESOLVED
    assert doc["resolved_at"] == T + 960
    verification = doc["verification"]
    assert verification["outcome"] == vr.PASSED
    assert verification["suite"] == {
        "name": "external_dbt_outputs",
        "success": True,
        "run_time": T + 900,
        "unsuccessful": 0,
        "evaluated": 3,
    }
    assert not polls.due(doc, T + 10_000)


def test_a_failing_suite_needs_attention_and_says_why() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 720), T + 800)
    failing = polls.SuitePoll(True, success=False, run_time=T + 900, unsuccessful=1, evaluated=3)
    polls.suite_polled(doc, failing, T + 960)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["outcome"] == vr.FAILED
    assert doc["verification"]["reason"] == (
        "quality suite external_dbt_outputs failed: 1 of 3 expectations unmet"
    )
    assert inc.settled_state(doc) == inc.NEEDS_ATTENTION


def test_a_failed_backfill_needs_attention() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("failed", started_at=T, ended_at=T + 180), T + 240)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["reason"] == f"backfill run {RUN_ID} failed in 3 min"
    assert doc["verification"]["stage"] is None


def test_the_backfill_bound_expires_into_needs_attention() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("queued"), T + 60)
    assert doc["state"] == inc.VERIFYING
    polls.run_polled(doc, polls.RunPoll("queued"), T + PLAN.backfill_timeout)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["reason"] == (
        f"backfill run {RUN_ID} still queued when its bound expired"
    )


def test_airflow_errors_are_recorded_and_polled_again_until_the_bound() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll(None, error="HTTP 503: down"), T + 60)
    polls.run_polled(doc, polls.RunPoll(None, error="HTTP 503: down"), T + 120)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["last_error"] == "HTTP 503: down"
    (entry,) = [e for e in doc["timeline"] if "could not read its state" in e["event"]]
    assert entry["repeats"] == 2  # one timeline line, counted
    polls.run_polled(doc, polls.RunPoll(None, error="HTTP 503: down"), T + PLAN.backfill_timeout)
    assert doc["state"] == inc.NEEDS_ATTENTION


def test_no_suite_result_within_its_bound_needs_attention() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 60)
    polls.suite_polled(doc, polls.SuitePoll(False), T + 120)
    assert doc["state"] == inc.VERIFYING
    polls.suite_polled(doc, polls.SuitePoll(False), T + 60 + PLAN.quality_timeout)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["reason"] == (
        "no result of quality suite external_dbt_outputs newer than the backfill's end"
    )


def test_a_poll_of_the_wrong_stage_changes_nothing() -> None:
    doc = verifying()
    assert not polls.suite_polled(doc, passed_suite(T + 10), T + 10)
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 60)
    assert not polls.run_polled(doc, polls.RunPoll("failed"), T + 70)
    assert doc["verification"]["stage"] == vr.QUALITY


def test_dry_run_plans_the_follow_up_steps_and_resolves() -> None:
    doc = recovered(result="dry_run")
    assert progress.settle(doc, T, notes=True, verify=PLAN)
    assert doc["state"] == inc.RESOLVED
    verification = doc["verification"]
    assert verification["dry_run"] is True
    assert verification["outcome"] == vr.PLANNED
    planned = [e for e in events(doc) if e.startswith("planned (dry run): ")]
    assert planned == [f"planned (dry run): {step}" for step in verification["steps"]]
    assert "follow backfill run" in planned[0]
    assert "quality suite external_dbt_outputs" in planned[1]
    assert not polls.due(doc, T + 10_000)


def test_a_failed_or_skipped_backfill_is_not_verified() -> None:
    doc = recovered(result="skipped")
    progress.settle(doc, T, notes=True, verify=PLAN)
    assert doc.get("verification") is None
    assert doc["state"] == inc.RESOLVED


# --- notes ------------------------------------------------------------------------------


def test_notes_while_verifying_then_the_follow_up_reply() -> None:
    doc = verifying()
    doc["note_slots"] = ["initial:0"]
    # Verifying: the resolution note now ("backfill triggered"), no hourly update.
    assert note_slots.due_notes(doc, T + 7200, 3600) == [("resolution", 0)]
    note_slots.note_done(doc, "resolution:0", {}, None, T + 10)
    assert doc["live"] is True
    assert note_slots.due_notes(doc, T + 7200, 3600) == []
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 60)
    polls.suite_polled(doc, passed_suite(T + 100), T + 120)
    assert note_slots.due_notes(doc, T + 7200, 3600) == [("verification", 0)]
    note_slots.note_done(doc, "verification:0", {}, None, T + 130)
    assert doc["live"] is False  # resolved, every final note posted
    assert note_slots.due_notes(doc, T + 7200, 3600) == []


def test_a_failed_verification_posts_its_reply_and_stays_live() -> None:
    doc = verifying()
    doc["note_slots"] = ["initial:0", "resolution:0"]
    polls.run_polled(doc, polls.RunPoll("failed", started_at=T, ended_at=T + 60), T + 60)
    assert note_slots.due_notes(doc, T + 100, 3600) == [("verification", 0)]
    note_slots.note_done(doc, "verification:0", {}, None, T + 130)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["live"] is True


def test_minutes_reads_like_the_runbook() -> None:
    assert vr.minutes(720) == "12 min"
    assert vr.minutes(5) == "1 min"
    assert vr.minutes(3600) == "1 h"
    assert vr.minutes(2 * 3600 + 300) == "2 h 5 min"


def render_followup(doc: Doc) -> str:
    doc["alerts"] = {}
    catalog = parse_catalog({"providers": [{"name": "ISO-NE"}]}, "<test>")
    renderer = NoteRenderer(NotesSettings(), catalog)
    text, from_template = renderer.render(
        NoteRequest("verification", 0, inc.view(doc), T + 1000, None)
    )
    assert from_template
    return text


def test_the_follow_up_reply_says_what_passed() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 720), T + 800)
    polls.suite_polled(doc, passed_suite(T + 900), T + 960)
    first, second = render_followup(doc).splitlines()
    assert first.endswith("Data backfill verified: ISO-NE*")
    assert second == (
        f"backfill run {RUN_ID} succeeded in 12 min · external_dbt_outputs passed at "
        "1970-01-01 00:31 UTC"
    )


def test_the_follow_up_reply_says_what_failed() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("failed", started_at=T, ended_at=T + 180), T + 240)
    lines = render_followup(doc).splitlines()
    assert lines[0].endswith("Data backfill verification FAILED: ISO-NE* · needs attention")
    assert lines[1] == f"backfill run {RUN_ID} FAILED in 3 min"
    assert lines[2].startswith(f"*What failed:* backfill run {RUN_ID} failed in 3 min.")
    assert "DAG external_data_backfill" in lines[2]


# --- dry run and simulate: the same steps, planned ----------------------------------------


def dry_run_config(tmp_path: Path, *, enabled: bool = True) -> ResponderConfig:
    return responder_config(
        tmp_path,
        catalog=make_catalog({"ISO-NE": {"quality_suite": "iso_ne_outputs"}, "MISO": {}}),
        playbooks=BACKFILL_PLAYBOOKS,
        dry_run=True,
        verification={"enabled": enabled, "poll_interval_seconds": 30},
    )


async def test_simulate_lists_the_follow_up_steps_after_the_backfill(tmp_path: Path) -> None:
    config = dry_run_config(tmp_path)
    body = notification([resolved(alert("ISO-NE")), resolved(alert("MISO"))])
    async with open_actions(config.actions, config.providers) as actions:
        entries = plan(config, parse_notification(body), actions, T)
        steps = {e["provider"]: e["steps"][0] for e in entries}
        off = plan(dry_run_config(tmp_path, enabled=False), parse_notification(body), actions, T)
    iso, miso = steps["ISO-NE"], steps["MISO"]
    assert iso["action"] == "trigger_backfill"
    follow, wait = iso["then"]
    assert follow.startswith("follow backfill run feedguard__backfill__ISO-NE__simulated of DAG")
    assert "poll every 30 s" in follow
    assert wait.startswith("wait for quality suite iso_ne_outputs ")  # the catalog's suite
    assert "quality suite external_dbt_outputs " in miso["then"][1]  # the config's default
    assert all("then" not in e["steps"][0] for e in off)


async def outage(responder: Responder, clock: FakeClock, provider: str) -> Doc:
    """A provider down for 10 minutes, then resolved (no health probe: recovered at once)."""
    firing = alert(provider, starts_at=clock.now - 60)
    assert (await responder.post(notification([firing]))).status == 200
    await responder.tick()
    clock.advance(600)
    assert (await responder.post(notification([resolved(firing, clock.now)]))).status == 200
    await responder.tick()
    return await responder.incident(provider)


async def test_dry_run_records_the_planned_follow_up_and_resolves(tmp_path: Path) -> None:
    config = dry_run_config(tmp_path)
    clock = FakeClock()
    async with start_responder(config, clock=clock) as responder:
        doc = await outage(responder, clock, "MISO")
        async with responder.session.get(f"{responder.url}/incidents/{doc['id']}") as response:
            assert response.status == 200
            page = await response.text()
    assert doc["state"] == "resolved", doc["timeline"]
    assert "Verified recovery (dry run: planned only)" in page
    assert "<dt>Outcome</dt><dd>planned</dd>" in page
    verification = doc["verification"]
    assert verification["dry_run"] is True
    assert verification["outcome"] == "planned"
    planned = [e["event"] for e in doc["timeline"] if e["event"].startswith("planned (dry run)")]
    assert len(planned) == 2
    assert "follow backfill run feedguard__backfill__MISO__" in planned[0]
    assert "quality suite external_dbt_outputs" in planned[1]
    (backfill,) = [a for a in doc["actions"] if a["action"] == "trigger_backfill"]
    assert backfill["result"] == "dry_run"


# --- Airflow 2 (the /api/v1 stand-in) and a GX 0.x result named by the catalog ----------


def airflow2_config(tmp_path: Path, airflow_url: str, **overrides: Any) -> ResponderConfig:
    """MISO (quality_suite legacy_outputs) backfilled through the Airflow 2 stand-in;
    ``playbooks`` and ``verification`` (merged) may be overridden too."""
    return responder_config(
        tmp_path,
        catalog=make_catalog({"MISO": {"quality_suite": "legacy_outputs"}}),
        playbooks=overrides.pop("playbooks", BACKFILL_PLAYBOOKS),
        actions={
            "airflow": {
                "base_url": airflow_url,
                "version": "2",
                "username": "admin",
                "password": "secret",
            }
        },
        verification={
            "enabled": True,
            "validations_dir": str(tmp_path / "validations"),
            "poll_interval_seconds": 60,
            **overrides.pop("verification", {}),
        },
        **overrides,
    )


async def test_airflow_2_backfill_and_a_gx_0_suite_from_the_catalog(
    tmp_path: Path,
    aiohttp_server: Any,
) -> None:
    fake = FakeAirflow2(username="admin", password="secret")
    fake.add_dag("external_data_backfill")
    server = await aiohttp_server(fake.app())
    validations = tmp_path / "validations"
    config = airflow2_config(tmp_path, str(server.make_url("")).rstrip("/"))
    clock = FakeClock()
    async with start_responder(config, clock=clock) as responder:
        doc = await outage(responder, clock, "MISO")
        assert doc["state"] == "verifying", doc["timeline"]
        (run,) = fake.runs
        assert doc["verification"]["backfill"]["dag_run_id"] == run.dag_run_id

        # Airflow answers 503: recorded, polled again, still verifying.
        fake.failure = 503
        clock.advance(60)
        await responder.tick()
        doc = await responder.incident("MISO")
        assert doc["state"] == "verifying"
        assert "HTTP 503" in doc["verification"]["last_error"]
        fake.failure = None

        started = datetime.fromtimestamp(clock.now, UTC)
        run.state, run.start_date = "success", started
        run.end_date = datetime.fromtimestamp(clock.now + 300, UTC)
        clock.advance(60)
        await responder.tick()
        doc = await responder.incident("MISO")
        assert doc["verification"]["stage"] == "quality"
        assert doc["verification"]["backfill"]["duration_seconds"] == 300
        assert doc["verification"]["last_error"] is None

        # GX 0.x keeps its suite name in meta; the folder is the suite's name.
        folder = validations / "legacy_outputs" / "nightly" / "20991231T000000.000000Z"
        folder.mkdir(parents=True)
        shutil.copy(DATA / "gx0_validation_result.json", folder / "batch.json")
        clock.advance(60)
        await responder.tick()
        doc = await responder.incident("MISO")

    assert doc["state"] == "resolved", doc["timeline"]
    assert doc["verification"]["suite"]["name"] == "legacy_outputs"
    assert doc["verification"]["suite"]["success"] is True
    path = f"/api/v1/dags/external_data_backfill/dagRuns/{run.dag_run_id}"
    assert fake.requests.count(("GET", path)) == 3  # first poll, the 503, success


async def test_check_config_online_looks_for_the_suites_in_the_store(tmp_path: Path) -> None:
    validations = tmp_path / "validations"

    def check(enabled: bool = True) -> Any:
        config = responder_config(
            tmp_path,
            catalog=make_catalog({"MISO": {"quality_suite": "legacy_outputs"}, "EIA": {}}),
            verification={"enabled": enabled, "validations_dir": str(validations)},
        )
        return check_quality_store(config)

    assert (await check(enabled=False)).status == "skipped"
    missing = await check()
    assert missing.status == "problem"
    assert missing.detail == f"{validations}: validations directory is missing"

    folder = validations / "legacy_outputs" / "nightly" / "20261125T234500.000000Z"
    folder.mkdir(parents=True)
    shutil.copy(DATA / "gx0_validation_result.json", folder / "batch.json")
    partial = await check()
    assert partial.line() == (
        f"problem: quality store {validations}: no result of suite(s) external_dbt_outputs"
    )

    folder = validations / "external_dbt_outputs" / "__none__" / "20261125T235000.123456Z"
    folder.mkdir(parents=True)
    shutil.copy(DATA / "gx1_validation_result.json", folder / "b.json")
    found = await check()
    assert found.status == "ok"
    assert found.detail == (
        "newest results: external_dbt_outputs (failed at 2026-11-25T23:50:00.123Z), "
        "legacy_outputs (passed at 2026-11-25T23:45:00Z)"
    )


def test_without_notes_a_verified_incident_is_no_longer_served_once_resolved() -> None:
    doc = recovered()
    progress.settle(doc, T, notes=False, verify=PLAN)
    assert doc["live"] is True  # verifying: served every tick
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 60)
    polls.suite_polled(doc, passed_suite(T + 100), T + 120)
    assert doc["state"] == inc.RESOLVED
    assert doc["live"] is False


async def test_each_poll_is_a_span_with_its_airflow_call_and_timeline_entries(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    fake = FakeAirflow2(username="admin", password="secret")
    fake.add_dag("external_data_backfill")
    airflow_url = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
    receiver = OtlpReceiver()
    async with receiver.serve() as otlp_url:
        tracing = {"enabled": True, "endpoint": f"{otlp_url}/v1/traces", "sampling_ratio": 1.0}
        config = airflow2_config(tmp_path, airflow_url, tracing=tracing)
        clock = FakeClock()
        async with start_responder(config, clock=clock) as responder:
            doc = await outage(responder, clock, "MISO")
        assert doc["state"] == "verifying"
    (poll,) = receiver.named("verify backfill")
    assert poll.attributes["feedguard.incident_id"] == doc["id"]
    (call,) = receiver.children(poll)
    assert call.attributes["http.method"] == "GET"
    assert call.attributes["http.url"].endswith(f"/dagRuns/{fake.runs[0].dag_run_id}")
    traced = {e["event"]: e.get("trace_id") for e in doc["timeline"]}
    assert traced[f"backfill run {fake.runs[0].dag_run_id}: queued"] == poll.trace_id


def test_verification_waits_for_a_recovery_step_awaiting_approval() -> None:
    doc = recovered()
    inc.enqueue(doc, "recovery", "down", [{"action": "read_cache"}])
    doc["work"][-1]["status"] = inc.AWAITING_APPROVAL
    progress.settle(doc, T, notes=True, verify=PLAN)
    assert doc.get("verification") is None  # not before every resolved step ran
    doc["work"][-1]["status"] = "done"
    progress.settle(doc, T + 60, notes=True, verify=PLAN)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["started_at"] == T + 60


# --- a retry after a failed verification ------------------------------------------------


def failed_run() -> Doc:
    """Verification failed: the backfill run failed; the reply about it was posted."""
    doc = verifying()
    doc["note_slots"] = ["initial:0", "resolution:0"]
    polls.run_polled(doc, polls.RunPoll("failed", started_at=T, ended_at=T + 60), T + 60)
    note_slots.note_done(doc, "verification:0", {}, None, T + 70)
    assert doc["state"] == inc.NEEDS_ATTENTION
    return doc


def test_a_retry_follows_the_same_run_again_with_fresh_bounds() -> None:
    doc = failed_run()
    assert vr.retryable(doc)
    assert progress.retry(doc, T + 5000, PLAN)
    verification = doc["verification"]
    assert doc["state"] == inc.VERIFYING
    assert doc["live"] is True
    assert verification["attempt"] == 1
    assert verification["stage"] == vr.BACKFILL
    assert verification["outcome"] is None
    assert verification["deadline"] == T + 5000 + PLAN.backfill_timeout
    assert verification["next_poll_at"] == T + 5000
    assert verification["backfill"]["dag_run_id"] == RUN_ID
    assert verification["backfill"]["state"] is None
    (earlier,) = verification["history"]
    assert earlier["attempt"] == 0
    assert earlier["outcome"] == vr.FAILED
    assert earlier["reason"] == f"backfill run {RUN_ID} failed in 1 min"
    assert earlier["backfill"]["state"] == "failed"
    assert events(doc)[-1] == (
        f"retry requested: verification restarted (run {RUN_ID}, suite external_dbt_outputs)"
    )
    assert polls.due(doc, T + 5000)
    assert note_slots.due_notes(doc, T + 5000, 3600) == []  # nothing to say while verifying

    # The run was cleared in Airflow and ran again; the suite passed after it.
    again = polls.RunPoll("success", started_at=T + 4000, ended_at=T + 4600)
    polls.run_polled(doc, again, T + 5000)
    assert verification["stage"] == vr.QUALITY
    polls.suite_polled(doc, passed_suite(T + 4700), T + 5060)
    assert doc["state"] == inc.RESOLVED
    # The new outcome is a reply of its own: slot 0 was the failure's.
    assert note_slots.due_notes(doc, T + 5100, 3600) == [("verification", 1)]
    assert doc["live"] is True
    note_slots.note_done(doc, "verification:1", {}, None, T + 5100)
    assert doc["live"] is False


def test_after_a_failed_suite_only_a_newer_result_counts() -> None:
    doc = verifying()
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 60)
    failing = polls.SuitePoll(True, success=False, run_time=T + 100, unsuccessful=1, evaluated=3)
    polls.suite_polled(doc, failing, T + 120)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert progress.retry(doc, T + 600, PLAN)
    verification = doc["verification"]
    assert verification["results_after"] == T + 100
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 600)
    # The result that failed is still the newest: not what the retry waits for.
    assert polls.suite_polled(doc, failing, T + 660)
    assert doc["state"] == inc.VERIFYING
    assert verification["suite"]["run_time"] is None
    polls.suite_polled(doc, passed_suite(T + 650), T + 720)
    assert doc["state"] == inc.RESOLVED
    assert [h["suite"]["success"] for h in verification["history"]] == [False]


def test_a_retry_with_nothing_to_retry_changes_nothing() -> None:
    resolved_doc = verifying()
    polls.run_polled(resolved_doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 60)
    polls.suite_polled(resolved_doc, passed_suite(T + 100), T + 120)
    dry = recovered(result="dry_run")
    progress.settle(dry, T, notes=True, verify=PLAN)
    for doc in (verifying(), resolved_doc, dry, recovered()):
        before = copy.deepcopy(doc)
        assert not progress.retry(doc, T + 9000, PLAN)
        assert doc == before


def test_with_verification_switched_off_a_retry_does_not_restart_it() -> None:
    doc = failed_run()
    before = copy.deepcopy(doc)
    assert not progress.retry(doc, T + 5000, None)
    assert doc == before


def test_failed_steps_are_retried_in_the_same_retry() -> None:
    doc = failed_run()
    inc.enqueue(doc, "firing", "down", [{"action": "pause_dags"}])
    doc["work"][-1]["status"] = "failed"
    assert progress.retry(doc, T + 5000, PLAN)
    assert doc["work"][-1]["status"] == "pending"
    assert doc["verification"]["attempt"] == 1
    assert events(doc)[-2:] == [
        f"retry requested: verification restarted (run {RUN_ID}, suite external_dbt_outputs)",
        "retry requested: 1 failed steps",
    ]
    # The steps run first; then it settles into verifying again, not resolved.
    doc["work"][-1]["status"] = "done"
    progress.settle(doc, T + 5010, notes=True, verify=PLAN)
    assert doc["state"] == inc.VERIFYING


def test_the_history_keeps_the_last_attempts() -> None:
    doc = failed_run()
    for attempt in range(1, 8):
        now = T + 1000 * attempt
        assert progress.retry(doc, now, PLAN)
        polls.run_polled(doc, polls.RunPoll("failed", started_at=now, ended_at=now + 60), now + 60)
    history = doc["verification"]["history"]
    assert [h["attempt"] for h in history] == [2, 3, 4, 5, 6]
    assert doc["verification"]["attempt"] == 7


def test_the_reply_after_a_retry_says_so_and_how_to_retry_again() -> None:
    doc = failed_run()
    lines = render_followup(doc).splitlines()
    assert "after retry" not in lines[0]
    assert (
        f"then `POST /api/v1/incidents/{doc['id']}/retry` or the incident page's Retry"
        in (lines[2])
    )
    progress.retry(doc, T + 5000, PLAN)
    again = polls.RunPoll("success", started_at=T + 4000, ended_at=T + 4600)
    polls.run_polled(doc, again, T + 5000)
    polls.suite_polled(doc, passed_suite(T + 4700), T + 5060)
    assert (
        render_followup(doc)
        .splitlines()[0]
        .endswith("Data backfill verified: ISO-NE* · after retry 1")
    )


def test_a_retry_before_the_failure_reply_went_out_leaves_the_telling_to_the_next() -> None:
    doc = verifying()
    doc["note_slots"] = ["initial:0", "resolution:0"]
    polls.run_polled(doc, polls.RunPoll("failed", started_at=T, ended_at=T + 60), T + 60)
    assert note_slots.due_notes(doc, T + 70, 3600) == [("verification", 0)]
    assert progress.retry(doc, T + 70, PLAN)
    # Slot 0 would render the restarted, still waiting verification: it is not due.
    assert not vr.reply_due(doc, 0)
    assert note_slots.due_notes(doc, T + 80, 3600) == []
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=T + 60), T + 90)
    polls.suite_polled(doc, passed_suite(T + 100), T + 150)
    assert note_slots.due_notes(doc, T + 160, 3600) == [("verification", 1)]
