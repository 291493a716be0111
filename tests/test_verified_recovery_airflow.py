"""Verified recovery end to end: webhook -> recovery -> the real backfill run on the real
Airflow 3 -> the GX validations store -> resolved or needs_attention, with the
resolution note and its follow-up reply in a local Slack's thread.

The backfill DAGs are tests/airflow_dags' ``feedguard_backfill_succeeds`` and
``feedguard_backfill_fails``; quality results are GX 1.x validation files
(tests/data/gx) written where a file-mode context stores them.  The responder's
clock is the test's (bounds and poll intervals pass without waiting); only the
Airflow run itself takes real time, waited for with a bounded loop of ticks.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feedguard.responder.config import ResponderConfig

from .conftest import make_catalog
from .support.airflow import AirflowInstance
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import (
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

TOKEN = "xoxb-verify-token"
SUITE = "external_dbt_outputs"
POLL = 60.0
SUCCEEDS, FAILS = "feedguard_backfill_succeeds", "feedguard_backfill_fails"
GX1 = json.loads((Path(__file__).parent / "data" / "gx" / "gx1_validation_result.json").read_text())


def gx_result(success: bool) -> dict[str, Any]:
    """The GX 1.24 result of tests/data (one expectation of three unmet), or it passing."""
    result = copy.deepcopy(GX1)
    if success:
        for item in result["results"]:
            item["success"] = True
        result["success"] = True
        result["statistics"].update(
            successful_expectations=3, unsuccessful_expectations=0, success_percent=100.0
        )
    return result


def write_result(validations: Path, run_time: float, success: bool, suite: str = SUITE) -> None:
    """Where a file-mode context stores a checkpoint run's result (docs: dbt-gx facts)."""
    name = datetime.fromtimestamp(run_time, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = validations / suite / "__none__" / name
    folder.mkdir(parents=True)
    body = gx_result(success)
    body["suite_name"] = suite
    body["meta"]["run_id"]["run_time"] = datetime.fromtimestamp(run_time, UTC).isoformat()
    (folder / "warehouse_duckdb-external_outputs.json").write_text(json.dumps(body))


def config(
    tmp_path: Path, airflow: AirflowInstance, slack: FakeSlack, backfill_dag: str
) -> ResponderConfig:
    catalog = make_catalog({"ISO-NE": {"datasets": ["lmp_realtime_5min"]}})  # no health probe
    return responder_config(
        tmp_path,
        catalog=catalog,
        playbooks=[
            {
                "name": "provider-down",
                "matchers": ['alertname="ExternalProviderDown"'],
                "firing": [],
                "resolved": [{"action": "trigger_backfill"}],
            }
        ],
        executor={"attempts": 2, "backoff_initial_seconds": 0, "timeout_seconds": 20},
        actions={
            "airflow": {
                "base_url": airflow.base_url,
                "version": "3",
                "username": airflow.username,
                "password": airflow.password,
                "timeout_seconds": 20,
            },
            "backfill_dag": backfill_dag,
        },
        verification={
            "enabled": True,
            "validations_dir": str(tmp_path / "validations"),
            "poll_interval_seconds": POLL,
            "backfill_timeout_seconds": 3600,
            "quality_timeout_seconds": 1800,
        },
        notes={"slack_token": TOKEN, "base_url": slack.api_url, "max_retry_after_seconds": 5},
    )


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def backfill_dags(airflow_instance: AirflowInstance) -> Any:
    """Both backfill DAGs unpaused (new DAGs start paused: a run would stay queued)."""
    for dag in (SUCCEEDS, FAILS):
        airflow_instance.set_paused(dag, False)
    yield
    for dag in (SUCCEEDS, FAILS):
        airflow_instance.set_paused(dag, True)


async def recover(responder: Responder, clock: FakeClock) -> dict[str, Any]:
    """An outage of ISO-NE that resolves: the backfill is triggered, verification starts."""
    firing = alert("ISO-NE", starts_at=clock.now - 60)
    response = await responder.post(notification([firing]))
    assert response.status == 200
    await responder.tick()
    clock.advance(600)
    response = await responder.post(notification([resolved(firing, ends_at=clock.now)]))
    assert response.status == 200
    await responder.tick()
    await responder.tick()  # the resolution note, posted while verifying
    return await responder.incident("ISO-NE")


async def until_run_final(responder: Responder, clock: FakeClock) -> dict[str, Any]:
    """Tick every poll interval (test clock) until the real run left queued/running."""
    deadline = time.monotonic() + 120
    while True:
        clock.advance(POLL)
        await responder.tick()
        doc = await responder.incident("ISO-NE")
        if doc["verification"]["backfill"]["state"] in ("success", "failed"):
            return doc
        assert time.monotonic() < deadline, doc["timeline"][-5:]
        await asyncio.sleep(0.5)  # real time for Airflow's scheduler to run it


def thread_texts(slack: FakeSlack) -> tuple[str, list[str]]:
    (top,) = slack.top_level()
    return top.text, [m.text for m in slack.thread(top.ts)]


async def poll_after(responder: Responder, clock: FakeClock, seconds: float) -> dict[str, Any]:
    """Let ``seconds`` pass on the responder's clock; tick (the poll), tick again (the
    reply it made due); the incident as it is then."""
    clock.advance(seconds)
    await responder.tick()
    await responder.tick()
    return await responder.incident("ISO-NE")


async def test_backfill_and_suite_pass_then_resolved_with_a_reply_in_the_thread(
    tmp_path: Path, airflow_instance: AirflowInstance, slack: FakeSlack, backfill_dags: None
) -> None:
    clock = FakeClock(time.time())
    cfg = config(tmp_path, airflow_instance, slack, SUCCEEDS)
    validations = tmp_path / "validations"
    async with start_responder(cfg, clock=clock) as responder:
        doc = await recover(responder, clock)
        assert doc["state"] == "verifying", doc["timeline"]
        run_id = doc["verification"]["backfill"]["dag_run_id"]
        assert doc["verification"]["backfill"]["dag_id"] == SUCCEEDS
        (run,) = [r for r in airflow_instance.runs(SUCCEEDS) if r["dag_run_id"] == run_id]
        assert run["conf"]["provider"] == "ISO-NE"
        # The resolution note is out, saying the backfill was triggered and is followed.
        _, replies = thread_texts(slack)
        (resolution,) = [t for t in replies if "Resolved" in t]
        assert "*Data backfill:* triggered" in resolution
        assert f"then quality suite {SUITE}: the outcome follows in this thread" in resolution
        async with responder.session.get(f"{responder.url}/incidents/{doc['id']}") as response:
            page = await response.text()
        assert f"<code>{SUCCEEDS} / {run_id}</code>" in page
        assert "<dt>Waiting for</dt><dd>the backfill until" in page
        # Waiting holds no lease: another replica could take the incident between polls.
        store = responder.engine.store
        assert await store.acquire(f"incident:{doc['id']}", "another-replica", 5)
        await store.release(f"incident:{doc['id']}", "another-replica")

    # A restart (a new process on the same store) carries on from the store.
    async with start_responder(cfg, clock=clock) as responder:
        doc = await until_run_final(responder, clock)
        verification = doc["verification"]
        assert verification["backfill"]["state"] == "success", doc["timeline"]
        assert verification["stage"] == "quality"
        assert doc["state"] == "verifying"
        ended = verification["backfill"]["ended_at"]
        assert verification["backfill"]["duration_seconds"] >= 0

        # A result from before the backfill ended does not count, even a passing one.
        write_result(validations, ended - 30, success=True)
        doc = await poll_after(responder, clock, POLL)
        assert doc["state"] == "verifying"
        assert doc["verification"]["suite"]["run_time"] is None

        write_result(validations, ended + 90, success=True)
        doc = await poll_after(responder, clock, POLL)

    assert doc["state"] == "resolved", doc["timeline"]
    assert doc["verification"]["outcome"] == "passed"
    assert doc["verification"]["suite"]["success"] is True
    assert doc["verification"]["suite"]["run_time"] == pytest.approx(ended + 90, abs=0.01)
    assert doc["resolved_at"] is not None
    events = [e["event"] for e in doc["timeline"]]
    assert any(e.startswith(f"backfill run {run_id} succeeded in ") for e in events)
    assert f"state resolved: quality suite {SUITE} passed" in events
    _, replies = thread_texts(slack)
    followup = replies[-1]
    assert f"backfill run {run_id} succeeded in " in followup
    assert f"{SUITE} passed at " in followup
    assert "Data backfill verified: ISO-NE" in followup
    assert sum("Data backfill verif" in t for t in replies) == 1  # once


async def test_a_failed_backfill_needs_attention_and_the_reply_says_so(
    tmp_path: Path, airflow_instance: AirflowInstance, slack: FakeSlack, backfill_dags: None
) -> None:
    clock = FakeClock(time.time())
    cfg = config(tmp_path, airflow_instance, slack, FAILS)
    async with start_responder(cfg, clock=clock) as responder:
        doc = await recover(responder, clock)
        assert doc["state"] == "verifying", doc["timeline"]
        run_id = doc["verification"]["backfill"]["dag_run_id"]
        await until_run_final(responder, clock)
        doc = await poll_after(responder, clock, 0)  # the follow-up reply

    assert doc["state"] == "needs_attention"
    verification = doc["verification"]
    assert verification["backfill"]["state"] == "failed"
    assert verification["outcome"] == "failed"
    assert verification["reason"].startswith(f"backfill run {run_id} failed")
    assert verification["suite"]["run_time"] is None  # never waited for
    _, replies = thread_texts(slack)
    followup = replies[-1]
    assert "Data backfill verification FAILED: ISO-NE* · needs attention" in followup
    assert f"backfill run {run_id} FAILED" in followup
    assert f"\n*What failed:* backfill run {run_id} failed" in followup


async def test_a_failing_suite_needs_attention_with_its_counts(
    tmp_path: Path, airflow_instance: AirflowInstance, slack: FakeSlack, backfill_dags: None
) -> None:
    clock = FakeClock(time.time())
    cfg = config(tmp_path, airflow_instance, slack, SUCCEEDS)
    async with start_responder(cfg, clock=clock) as responder:
        await recover(responder, clock)
        doc = await until_run_final(responder, clock)
        ended = doc["verification"]["backfill"]["ended_at"]
        write_result(tmp_path / "validations", ended + 60, success=False)  # GX1 as observed
        doc = await poll_after(responder, clock, POLL)

    assert doc["state"] == "needs_attention"
    assert doc["verification"]["reason"] == (
        f"quality suite {SUITE} failed: 1 of 3 expectations unmet"
    )
    _, replies = thread_texts(slack)
    assert f"{SUITE} FAILED (1 of 3 expectations unmet) at " in replies[-1]


async def test_no_suite_result_within_the_bound_needs_attention(
    tmp_path: Path, airflow_instance: AirflowInstance, slack: FakeSlack, backfill_dags: None
) -> None:
    clock = FakeClock(time.time())
    cfg = config(tmp_path, airflow_instance, slack, SUCCEEDS)
    (tmp_path / "validations").mkdir()
    async with start_responder(cfg, clock=clock) as responder:
        await recover(responder, clock)
        await until_run_final(responder, clock)
        doc = await poll_after(responder, clock, 1800)  # the quality bound, on its clock

    assert doc["state"] == "needs_attention"
    assert doc["verification"]["reason"] == (
        f"no result of quality suite {SUITE} newer than the backfill's end"
    )
    _, replies = thread_texts(slack)
    assert "no result newer than the backfill's end" in replies[-1]
