"""A retry after a failed verification on the real Airflow 3, end to end.

The backfill is tests/airflow_dags' ``feedguard_backfill_gated``: its task fails unless
the Airflow Variable ``feedguard_backfill_allowed`` is ``yes``.  The incident recovers,
the backfill run fails, the incident needs attention and the reply in the thread says
what to do; on-call does it through Airflow's REST API (sets the Variable, clears the
run: ``POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear`` with ``dry_run`` false,
the run keeps its run_id and is queued again), the quality suite writes a result after
the re-run, and ``POST /api/v1/incidents/{id}/retry`` makes the responder follow the
same run again to ``resolved``, with a reply per attempt and the failed one as history.
Cleared without setting the Variable, the same run fails again and the retry's reply
says so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import pytest

from .support.airflow import AirflowInstance
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import FakeClock, Responder, start_responder
from .test_verification_retry import replies, retry
from .test_verified_recovery_airflow import (
    POLL,
    SUITE,
    TOKEN,
    config,
    poll_after,
    recover,
    thread_texts,
    until_run_final,
    write_result,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

GATED = "feedguard_backfill_gated"
GATE = "feedguard_backfill_allowed"  # the DAG's task passes only while this is "yes"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


def drop_gate(airflow: AirflowInstance) -> None:
    status, body = airflow.api("DELETE", f"/variables/{GATE}")
    assert status in (204, 404), body


@pytest.fixture
def gated_backfill(airflow_instance: AirflowInstance) -> Iterator[None]:
    """The gated DAG unpaused (new DAGs start paused) with no runs and its Variable unset."""
    airflow_instance.clear_runs(GATED)
    drop_gate(airflow_instance)
    airflow_instance.set_paused(GATED, False)
    yield
    airflow_instance.clear_runs(GATED)  # deletes the runs and pauses the DAG again
    drop_gate(airflow_instance)


class Failed(NamedTuple):
    responder: Responder
    clock: FakeClock
    ident: str  # the ISO-NE incident, needing attention
    run_id: str  # its backfill run, failed
    failed_end: float  # when that run ended
    reply: str  # the failure reply in the thread


@asynccontextmanager
async def failed_backfill(
    tmp_path: Path, airflow: AirflowInstance, slack: FakeSlack
) -> AsyncIterator[Failed]:
    """A responder whose ISO-NE outage recovered and whose gated backfill run failed: the
    incident needs attention and the failure reply tells on-call how to verify again."""
    clock = FakeClock(time.time())
    async with start_responder(config(tmp_path, airflow, slack, GATED), clock=clock) as responder:
        doc = await recover(responder, clock)
        assert doc["state"] == "verifying", doc["timeline"]
        await until_run_final(responder, clock)
        doc = await poll_after(responder, clock, 0)  # the failure reply
        assert doc["state"] == "needs_attention", doc["timeline"]
        ident, backfill = doc["id"], doc["verification"]["backfill"]
        (reply,) = replies(slack, ident, 0)
        assert f"backfill run {backfill['dag_run_id']} FAILED" in reply
        assert f"then `POST /api/v1/incidents/{ident}/retry`" in reply
        yield Failed(responder, clock, ident, backfill["dag_run_id"], backfill["ended_at"], reply)


async def clear_and_retry(airflow: AirflowInstance, failed: Failed) -> None:
    """On-call clears the run through Airflow 3's REST API (the same run_id, queued
    again), then asks the responder to verify again: it follows that run."""
    run_id = failed.run_id
    path = f"/dags/{GATED}/dagRuns/{quote(run_id, safe='')}/clear"
    status, cleared = airflow.api("POST", path, {"dry_run": False})
    assert status == 200, cleared
    assert (cleared["dag_run_id"], cleared["state"]) == (run_id, "queued")
    await retry(failed.responder, failed.ident)
    again = await failed.responder.incident("ISO-NE")
    assert again["state"] == "verifying", again["timeline"]
    events = [e["event"] for e in again["timeline"]]
    assert f"retry requested: verification restarted (run {run_id}, suite {SUITE})" in events


async def test_a_failed_run_cleared_in_airflow_3_verifies_after_a_retry(
    tmp_path: Path, airflow_instance: AirflowInstance, slack: FakeSlack, gated_backfill: None
) -> None:
    async with failed_backfill(tmp_path, airflow_instance, slack) as failed:
        responder, clock, ident, run_id, failed_end, first = failed
        # On-call, as the reply says: fix the cause, then clear the run and retry.
        status, body = airflow_instance.api("POST", "/variables", {"key": GATE, "value": "yes"})
        assert status == 201, body
        await clear_and_retry(airflow_instance, failed)

        doc = await until_run_final(responder, clock)
        backfill = doc["verification"]["backfill"]
        assert backfill["state"] == "success", doc["timeline"]
        assert backfill["ended_at"] > failed_end  # the re-run's end, not the failure's
        assert doc["verification"]["stage"] == "quality"
        write_result(tmp_path / "validations", backfill["ended_at"] + 60, success=True)
        doc = await poll_after(responder, clock, POLL)

    assert doc["state"] == "resolved", doc["timeline"]
    # The same run was followed again: no second run was triggered.
    assert [r["dag_run_id"] for r in airflow_instance.runs(GATED)] == [run_id]
    verification = doc["verification"]
    assert verification["attempt"] == 1
    assert verification["outcome"] == "passed"
    assert verification["backfill"]["dag_run_id"] == run_id
    (earlier,) = verification["history"]
    assert earlier["attempt"] == 0
    assert earlier["outcome"] == "failed"
    assert earlier["reason"].startswith(f"backfill run {run_id} failed")
    assert earlier["backfill"]["state"] == "failed"
    assert earlier["backfill"]["dag_run_id"] == run_id
    # One reply per attempt, in order, in the incident's thread.
    (second,) = replies(slack, ident, 1)
    assert "Data backfill verified: ISO-NE* · after retry 1" in second
    assert f"backfill run {run_id} succeeded in " in second
    assert f"{SUITE} passed at " in second
    _, thread = thread_texts(slack)
    assert thread.index(first) < thread.index(second)
    assert replies(slack, ident, 0) == [first]


async def test_a_run_cleared_without_fixing_its_cause_fails_again_on_the_same_run(
    tmp_path: Path, airflow_instance: AirflowInstance, slack: FakeSlack, gated_backfill: None
) -> None:
    async with failed_backfill(tmp_path, airflow_instance, slack) as failed:
        responder, clock, ident, run_id, failed_end, first = failed
        await clear_and_retry(airflow_instance, failed)  # the Variable still unset
        await until_run_final(responder, clock)
        doc = await poll_after(responder, clock, 0)  # the second failure reply

    assert doc["state"] == "needs_attention", doc["timeline"]
    assert [r["dag_run_id"] for r in airflow_instance.runs(GATED)] == [run_id]
    verification = doc["verification"]
    assert verification["attempt"] == 1
    assert verification["outcome"] == "failed"
    assert verification["reason"].startswith(f"backfill run {run_id} failed")
    assert verification["backfill"]["ended_at"] > failed_end  # the re-run failed, too
    (earlier,) = verification["history"]
    assert (earlier["attempt"], earlier["outcome"]) == (0, "failed")
    assert earlier["backfill"]["ended_at"] == failed_end
    (second,) = replies(slack, ident, 1)
    assert "Data backfill verification FAILED: ISO-NE* · after retry 1 · needs attention" in second
    assert f"backfill run {run_id} FAILED" in second
    assert replies(slack, ident, 0) == [first]
