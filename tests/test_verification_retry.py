"""A retry after a failed verification, end to end: the responder follows the Airflow 2
stand-in's backfill run, reads the GX validations store (and dbt's run_results.json),
replies in a local Slack's thread; on-call clears and re-runs the run (the stand-in's
run goes back to queued with the same run_id, then succeeds) or re-runs the suite or
the dbt tests, then POSTs .../retry; the verification starts again and the incident
resolves, with every reply in the thread and the failed attempts kept as history on
the incident (API and page)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from .support.fake_airflow2 import FakeAirflow2, Run
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import FLAGS_TOKEN, FakeClock, Responder, start_responder
from .test_verified_recovery import airflow2_config, outage
from .test_verified_recovery_airflow import write_result

Doc = dict[str, Any]
TOKEN = "xoxb-reverify-token"
SUITE = "legacy_outputs"  # MISO's quality_suite in airflow2_config's catalog
POLL = 60.0
DBT_DATA = Path(__file__).parent / "data" / "dbt" / "run_results_1_12"
SELECT = "mart_external_series_catalog+"
CADENCE = "test.external_catalog.not_null_mart_external_series_catalog_cadence.962ec3916f"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def finish(run: Run, state: str, started: float, ended: float) -> None:
    """The stand-in's run reaches a final state, as Airflow's scheduler would set it."""
    run.state, run.start_date, run.end_date = state, at(started), at(ended)


class Started(NamedTuple):
    responder: Responder
    clock: FakeClock
    ident: str  # the MISO incident, verifying
    run: Run  # its backfill run in the stand-in
    airflow: FakeAirflow2


def write_run_results(path: Path, name: str, generated_at: float) -> None:
    """dbt finished an invocation: the real artifact ``name``, its end time moved."""
    data = json.loads((DBT_DATA / name / "run_results.json").read_text())
    data["metadata"]["generated_at"] = at(generated_at).isoformat().replace("+00:00", "Z")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@asynccontextmanager
async def verifying(
    tmp_path: Path, aiohttp_server: Any, slack: FakeSlack, *, dbt_tests: bool = False
) -> AsyncIterator[Started]:
    """A responder (Airflow 2 stand-in, local Slack) whose MISO outage resolved: the
    backfill was triggered and the incident is verifying (``dbt_tests``: also waiting
    for dbt's tests in tmp_path/target/run_results.json)."""
    fake = FakeAirflow2(username="admin", password="secret")
    fake.add_dag("external_data_backfill")
    server = await aiohttp_server(fake.app())
    results = str(tmp_path / "target" / "run_results.json")
    config = airflow2_config(
        tmp_path,
        str(server.make_url("")).rstrip("/"),
        notes={"slack_token": TOKEN, "base_url": slack.api_url, "max_retry_after_seconds": 5},
        verification={"dbt_tests": {"enabled": dbt_tests, "run_results_path": results}},
    )
    clock = FakeClock()
    async with start_responder(config, clock=clock) as responder:
        doc = await outage(responder, clock, "MISO")
        assert doc["state"] == "verifying", doc["timeline"]
        (run,) = fake.runs
        yield Started(responder, clock, doc["id"], run, fake)


async def poll(responder: Responder, clock: FakeClock) -> Doc:
    """One poll interval on the responder's clock: the poll, then the reply it made due."""
    clock.advance(POLL)
    await responder.tick()
    await responder.tick()
    return await responder.incident("MISO")


async def retry(responder: Responder, ident: str) -> None:
    url = f"{responder.url}/api/v1/incidents/{ident}/retry"
    headers = {"Authorization": f"Bearer {FLAGS_TOKEN}"}
    async with responder.session.post(url, headers=headers) as response:
        assert response.status == 202, await response.text()
        assert await response.json() == {"status": "retrying", "id": ident}
    await responder.settle()


def replies(slack: FakeSlack, ident: str, attempt: int) -> list[str]:
    return [m.text for m in slack.posts_of(ident, f"verification:{attempt}")]


async def test_a_failed_backfill_cleared_and_rerun_verifies_after_a_retry(
    tmp_path: Path, aiohttp_server: Any, slack: FakeSlack
) -> None:
    validations = tmp_path / "validations"
    async with verifying(tmp_path, aiohttp_server, slack) as (responder, clock, ident, run, _):
        finish(run, "failed", clock.now, clock.now + 30)
        doc = await poll(responder, clock)
        assert doc["state"] == "needs_attention", doc["timeline"]
        (first,) = replies(slack, ident, 0)
        assert "Data backfill verification FAILED: MISO* · needs attention" in first
        assert f"then `POST /api/v1/incidents/{ident}/retry`" in first
        # The retry follows this run: the reply says to clear it, not to trigger another.
        assert f"re-run it by clearing run {run.dag_run_id} (a new run is not followed" in first

        async with responder.session.get(f"{responder.url}/incidents/{ident}") as response:
            offered = await response.text()
        assert '<button type="submit">Retry verification</button>' in offered

        # On-call clears the run in Airflow: the same run_id goes back to queued.
        run.state, run.end_date = "queued", None
        await retry(responder, ident)
        doc = await responder.incident("MISO")
        assert doc["state"] == "verifying", doc["timeline"]
        assert doc["verification"]["backfill"]["state"] == "queued"  # polled at once
        events = [e["event"] for e in doc["timeline"]]
        run_id = run.dag_run_id
        assert f"retry requested: verification restarted (run {run_id}, suite {SUITE})" in events

        finish(run, "success", clock.now, clock.now + 120)
        write_result(validations, clock.now + 180, success=True, suite=SUITE)
        clock.advance(POLL)
        await responder.tick()  # the run succeeded: on to the suite
        assert (await responder.incident("MISO"))["verification"]["stage"] == "quality"
        doc = await poll(responder, clock)
        assert doc["state"] == "resolved", doc["timeline"]

        # A second retry: nothing to retry, the same answer, nothing changes.
        await retry(responder, ident)
        assert await responder.incident("MISO") == doc
        async with responder.session.get(f"{responder.url}/incidents/{ident}") as response:
            page = await response.text()

    verification = doc["verification"]
    assert verification["attempt"] == 1
    assert verification["outcome"] == "passed"
    assert verification["backfill"]["state"] == "success"
    (earlier,) = verification["history"]
    assert earlier["outcome"] == "failed"
    assert earlier["reason"] == f"backfill run {run.dag_run_id} failed in 1 min"
    assert earlier["backfill"]["state"] == "failed"
    # Both replies, one per attempt, in the incident's thread.
    (top,) = slack.top_level()
    thread = [m.text for m in slack.thread(top.ts)]
    (second,) = replies(slack, ident, 1)
    assert "Data backfill verified: MISO* · after retry 1" in second
    assert thread.index(first) < thread.index(second)
    assert len(replies(slack, ident, 0)) == 1
    assert "Earlier attempts (before a retry)" in page
    assert "attempt 0, finished " in page
    assert f": failed: backfill run {run.dag_run_id} failed in 1 min (run failed)" in page


async def test_a_failed_suite_then_dbt_test_rerun_by_hand_verify_after_retries(
    tmp_path: Path, aiohttp_server: Any, slack: FakeSlack
) -> None:
    validations = tmp_path / "validations"
    run_results = tmp_path / "target" / "run_results.json"
    async with verifying(tmp_path, aiohttp_server, slack, dbt_tests=True) as started:
        responder, clock, ident, run, fake = started
        ended = clock.now + 30
        finish(run, "success", clock.now, ended)
        write_result(validations, ended + 10, success=False, suite=SUITE)
        write_run_results(run_results, "test_pass", ended - 60)  # before the run's end
        await poll(responder, clock)
        doc = await poll(responder, clock)
        assert doc["state"] == "needs_attention", doc["timeline"]
        assert doc["verification"]["reason"] == (
            f"quality suite {SUITE} failed: 1 of 3 expectations unmet"
        )
        assert doc["verification"]["dbt_tests"]["generated_at"] is None  # too old to count

        # Retried before the suite ran again: the failed result does not count twice.
        await retry(responder, ident)
        doc = await poll(responder, clock)
        assert doc["state"] == "verifying", doc["timeline"]
        assert doc["verification"]["stage"] == "quality"
        assert doc["verification"]["suite"]["run_time"] is None

        write_result(validations, clock.now, success=True, suite=SUITE)  # re-run by hand
        doc = await poll(responder, clock)
        # The suite passed; the dbt tests have not run since the backfill: still waiting.
        assert doc["state"] == "verifying", doc["timeline"]
        assert doc["verification"]["suite"]["success"] is True
        write_run_results(run_results, "test_fail", clock.now)  # dbt test: one fails
        doc = await poll(responder, clock)
        assert doc["state"] == "needs_attention", doc["timeline"]
        assert doc["verification"]["reason"] == f"1 of 3 dbt tests failed: {CADENCE}"

        # The data fixed, on-call re-runs the suite and dbt test, then retries.
        await retry(responder, ident)
        write_result(validations, clock.now + 1, success=True, suite=SUITE)
        write_run_results(run_results, "test_pass", clock.now + 2)
        doc = await poll(responder, clock)
        assert doc["state"] == "resolved", doc["timeline"]
        async with responder.session.get(f"{responder.url}/incidents/{ident}") as response:
            page = await response.text()

    verification = doc["verification"]
    assert verification["suite"]["success"] is True
    assert verification["dbt_tests"]["success"] is True
    assert verification["reason"] == (
        f"quality suite {SUITE} passed and 3 dbt tests passed ({SELECT})"
    )
    first, second = verification["history"]
    assert first["reason"] == f"quality suite {SUITE} failed: 1 of 3 expectations unmet"
    assert first["suite"]["success"] is False
    assert second["dbt_tests"]["failed_ids"] == [CADENCE]
    (failed,) = replies(slack, ident, 0)
    assert f"{SUITE} FAILED (1 of 3 expectations unmet)" in failed
    assert f"dbt test {SELECT}: no run newer than the backfill's end" in failed
    (dbt_failed,) = replies(slack, ident, 1)
    assert f"{SUITE} passed at " in dbt_failed
    assert f"dbt test {SELECT} FAILED (1 of 3 tests failed: {CADENCE}) at " in dbt_failed
    (passed,) = replies(slack, ident, 2)
    assert "Data backfill verified: MISO* · after retry 2" in passed
    assert f"{SUITE} passed at " in passed
    assert f"dbt test {SELECT} passed (3 tests) at " in passed
    path = f"/api/v1/dags/external_data_backfill/dagRuns/{run.dag_run_id}"
    assert fake.requests.count(("GET", path)) == 4  # queued, success; after each retry
    assert "<dt>dbt tests</dt><dd><code>--select mart_external_series_catalog+</code>: " in page
    assert ": passed (3 tests) at " in page
    assert f"suite passed, dbt tests failed (1 of 3 dbt tests failed: {CADENCE}))</li>" in page


async def test_a_retry_while_verifying_changes_nothing(
    tmp_path: Path, aiohttp_server: Any, slack: FakeSlack
) -> None:
    async with verifying(tmp_path, aiohttp_server, slack) as (responder, *_):
        await responder.tick()  # the resolution note
        doc = await responder.incident("MISO")
        assert doc["state"] == "verifying"
        await retry(responder, doc["id"])
        assert await responder.incident("MISO") == doc
    assert "attempt" not in doc["verification"]
    assert not slack.posts_of(doc["id"], "verification:0")
