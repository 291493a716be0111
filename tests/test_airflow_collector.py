"""DAG heartbeats: against the real Airflow 3 instance and the Airflow 2 stand-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowAuthError, AirflowSettings
from feedguard.exporter.collectors.airflow import AirflowCollector
from feedguard.exporter.collectors.base import Deadline

from .conftest import make_catalog
from .support.airflow import AirflowInstance
from .support.fake_airflow2 import FakeAirflow2
from .support.families import Samples, samples, value
from .support.request_counter import (  # noqa: F401  # the fixtures are used by name
    RequestCounter,
    counter_fixture,
    session_fixture,
)

HEARTBEAT = "feedguard_heartbeat_test"
FAILING = "external_failing"


def ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def state_of(found: Samples, dag_id: str) -> dict[str, float]:
    return {
        dict(labels)["state"]: v
        for (name, labels), v in found.items()
        if name == "external_dag_last_run_state" and dict(labels)["dag_id"] == dag_id
    }


# --- Airflow 3, for real ----------------------------------------------------------


@pytest.mark.airflow
async def test_heartbeat_success_paused_and_state_from_airflow_3(
    airflow_instance: AirflowInstance,
    session: aiohttp.ClientSession,
    counter: RequestCounter,
) -> None:
    for dag in (HEARTBEAT, FAILING):
        airflow_instance.clear_runs(dag)
    airflow_instance.set_paused(HEARTBEAT, False)
    airflow_instance.set_paused(FAILING, False)
    airflow_instance.trigger(HEARTBEAT, "hb-1")
    airflow_instance.trigger(FAILING, "fail-1")
    ok = airflow_instance.wait_for_run(HEARTBEAT, "hb-1")
    failed = airflow_instance.wait_for_run(FAILING, "fail-1")
    airflow_instance.set_paused(FAILING, True)

    catalog = make_catalog(
        {
            "EIA": {"datasets": ["a"], "dags": [HEARTBEAT, FAILING]},
            "MISO": {"datasets": ["b"], "dags": [HEARTBEAT, "not_in_airflow"]},
            "OFF": {"datasets": ["c"], "dags": ["disabled_provider_dag"], "enabled": False},
        }
    )
    collector = AirflowCollector(AirflowClient(session, airflow_instance.settings()), catalog)
    with capture_logs() as logs:
        found = samples(await collector.collect(Deadline.in_seconds(20)))

    assert value(found, "external_dag_last_success_timestamp", dag_id=HEARTBEAT) == ts(
        ok["end_date"]
    )
    assert value(found, "external_dag_last_run_timestamp", dag_id=HEARTBEAT) == ts(ok["start_date"])
    assert value(found, "external_dag_paused", dag_id=HEARTBEAT) == 0.0
    assert state_of(found, HEARTBEAT) == {
        "queued": 0.0,
        "running": 0.0,
        "success": 1.0,
        "failed": 0.0,
    }

    assert value(found, "external_dag_last_success_timestamp", dag_id=FAILING) is None
    assert value(found, "external_dag_last_run_timestamp", dag_id=FAILING) == ts(
        failed["start_date"]
    )
    assert value(found, "external_dag_paused", dag_id=FAILING) == 1.0
    assert state_of(found, FAILING)["failed"] == 1.0

    dag_ids = {dict(labels)["dag_id"] for (_, labels) in found}
    assert dag_ids == {HEARTBEAT, FAILING}
    assert any(e.get("dag_id") == "not_in_airflow" for e in logs)

    # Steady state, three catalog DAGs: one DAG-list request (read whole, so it also
    # proves not_in_airflow absent) and one batch runs request for all of them; the
    # failing DAG's success lookup was once only. (Before the batch: four requests.)
    counter.sent.clear()
    again = samples(await collector.collect(Deadline.in_seconds(20)))
    assert sorted(counter.sent) == [
        ("GET", "/api/v2/dags"),
        ("POST", "/api/v2/dags/~/dagRuns/list"),
    ]
    assert len(counter.sent) <= len({HEARTBEAT, FAILING, "not_in_airflow"})
    assert again == found

    # A shared window too small for both (one run per DAG: two runs), filled by
    # two newer runs of the heartbeat DAG: the failing DAG gets its own request
    # once, then its finished run is kept.
    airflow_instance.trigger(HEARTBEAT, "hb-2")
    airflow_instance.wait_for_run(HEARTBEAT, "hb-2")
    airflow_instance.trigger(HEARTBEAT, "hb-3")
    newest = airflow_instance.wait_for_run(HEARTBEAT, "hb-3")
    two = make_catalog({"EIA": {"datasets": ["a"], "dags": [HEARTBEAT, FAILING]}})
    small = AirflowCollector(
        AirflowClient(session, airflow_instance.settings()), two, runs_window=1
    )
    counter.sent.clear()
    found = samples(await small.collect(Deadline.in_seconds(20)))
    assert value(found, "external_dag_last_run_timestamp", dag_id=HEARTBEAT) == ts(
        newest["start_date"]
    )
    assert value(found, "external_dag_last_run_timestamp", dag_id=FAILING) == ts(
        failed["start_date"]
    )
    assert state_of(found, FAILING)["failed"] == 1.0
    # Its own runs and (no success among them) the once-per-process success lookup.
    assert sorted(counter.sent) == [
        ("GET", "/api/v2/dags"),
        ("GET", f"/api/v2/dags/{FAILING}/dagRuns"),
        ("GET", f"/api/v2/dags/{FAILING}/dagRuns"),
        ("POST", "/api/v2/dags/~/dagRuns/list"),
        ("POST", "/auth/token"),
    ]
    counter.sent.clear()
    assert samples(await small.collect(Deadline.in_seconds(20))) == found
    assert sorted(counter.sent) == [
        ("GET", "/api/v2/dags"),
        ("POST", "/api/v2/dags/~/dagRuns/list"),
    ]
    # The runs are gone (deleted, as a metadata DB reset leaves them): the
    # values that only move forward are forgotten, not kept from memory.
    airflow_instance.clear_runs(HEARTBEAT)
    airflow_instance.clear_runs(FAILING)
    for remembering in (collector, small):
        gone = samples(await remembering.collect(Deadline.in_seconds(20)))
        for dag_id in (HEARTBEAT, FAILING):
            assert value(gone, "external_dag_last_success_timestamp", dag_id=dag_id) is None
            assert value(gone, "external_dag_last_run_timestamp", dag_id=dag_id) is None
            assert state_of(gone, dag_id) == {}
        assert value(gone, "external_dag_paused", dag_id=HEARTBEAT) is not None


@pytest.mark.airflow
async def test_bad_password_fails_the_collection(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession
) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["a"], "dags": [HEARTBEAT]}})
    client = AirflowClient(session, airflow_instance.settings(password="wrong"))
    with pytest.raises(AirflowAuthError):
        await AirflowCollector(client, catalog).collect(Deadline.in_seconds(10))


# --- Airflow 2 stand-in: semantics that need arranged history ---------------------


@pytest.fixture
async def airflow2(aiohttp_server: Any) -> tuple[FakeAirflow2, AirflowSettings]:
    fake = FakeAirflow2(username="admin", password="s3cret")
    server = await aiohttp_server(fake.app())
    settings = AirflowSettings(
        enabled=True,
        base_url=str(server.make_url("")).rstrip("/"),
        username="admin",
        password="s3cret",
        runs_window=5,
    )
    return fake, settings


async def test_heartbeat_is_newest_start_manual_runs_count(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    fake.add_dag("external_data_ingest", is_paused=False)
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    fake.add_run("external_data_ingest", "sched", "success", t0, t0, t0 + timedelta(minutes=2))
    # A manual backfill run: old logical date, the newest start. Still running.
    fake.add_run(
        "external_data_ingest",
        "manual",
        "running",
        t0 - timedelta(days=2),
        t0 + timedelta(minutes=10),
        run_type="manual",
    )
    catalog = make_catalog({"EIA": {"datasets": ["a"], "dags": ["external_data_ingest"]}})
    collector = AirflowCollector(AirflowClient(session, settings), catalog, runs_window=5)
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    dag = "external_data_ingest"
    assert (
        value(found, "external_dag_last_run_timestamp", dag_id=dag)
        == (t0 + timedelta(minutes=10)).timestamp()
    )
    assert (
        value(found, "external_dag_last_success_timestamp", dag_id=dag)
        == (t0 + timedelta(minutes=2)).timestamp()
    )
    assert state_of(found, dag)["running"] == 1.0

    # A queued run (no start date; PostgreSQL sorts it first) is the newest run,
    # but not a heartbeat: nothing has started.
    fake.add_run("external_data_ingest", "queued", "queued", t0 + timedelta(minutes=20))
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert state_of(found, dag)["queued"] == 1.0
    assert (
        value(found, "external_dag_last_run_timestamp", dag_id=dag)
        == (t0 + timedelta(minutes=10)).timestamp()
    )


async def test_success_older_than_the_window_is_found_once_and_kept(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    dag = "external_backfill"
    fake.add_dag(dag, is_paused=True)
    t0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    fake.add_run(dag, "good", "success", t0, t0, t0 + timedelta(minutes=1))
    for i in range(1, 8):  # more failures than the window of 5 holds
        start = t0 + timedelta(hours=i)
        fake.add_run(dag, f"bad-{i}", "failed", start, start, start + timedelta(minutes=1))
    catalog = make_catalog({"NOAA": {"datasets": ["a"], "dags": [dag]}})
    collector = AirflowCollector(AirflowClient(session, settings), catalog, runs_window=5)

    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert (
        value(found, "external_dag_last_success_timestamp", dag_id=dag)
        == (t0 + timedelta(minutes=1)).timestamp()
    )
    assert value(found, "external_dag_paused", dag_id=dag) == 1.0
    assert state_of(found, dag)["failed"] == 1.0
    success_lookups = [p for m, p in fake.requests if "state=success" in p]
    assert len(success_lookups) == 1

    fake.requests.clear()
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert (
        value(found, "external_dag_last_success_timestamp", dag_id=dag)
        == (t0 + timedelta(minutes=1)).timestamp()
    )
    # Airflow 2, one DAG: its paused flag and the batch runs request, no success
    # lookup. Two requests for one DAG: the flag and the runs are separate resources.
    assert sorted(p.split("?")[0] for _, p in fake.requests) == sorted(
        ["/api/v1/dags/~/dagRuns/list", f"/api/v1/dags/{dag}"]
    )


async def test_airflow_2_unavailable_fails_the_collection(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    fake.add_dag("external_data_ingest")
    fake.failure = 503
    catalog = make_catalog({"EIA": {"datasets": ["a"], "dags": ["external_data_ingest"]}})
    collector = AirflowCollector(AirflowClient(session, settings), catalog)
    with pytest.raises(Exception, match="HTTP 503"):
        await collector.collect(Deadline.in_seconds(5))


def paths(fake: FakeAirflow2) -> list[str]:
    """The API paths requested since the last call, sorted (they run concurrently);
    the health checks of the once-per-process version detection left out."""
    found = sorted(p.split("?")[0] for _, p in fake.requests if not p.endswith("/health"))
    fake.requests.clear()
    return found


async def test_a_rarely_running_dag_is_not_starved_by_a_busy_one(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    busy, rare = "external_busy", "external_rare"
    fake.add_dag(busy, is_paused=False)
    fake.add_dag(rare, is_paused=False)
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def minute(i: int) -> datetime:
        return t0 + timedelta(minutes=i)

    def busy_runs(first: int, last: int) -> None:
        for i in range(first, last + 1):
            fake.add_run(
                busy, f"b{i}", "success", minute(i), minute(i), minute(i) + timedelta(seconds=30)
            )

    busy_runs(0, 29)
    day_ago = t0 - timedelta(days=1)
    fake.add_run(rare, "daily", "success", day_ago, day_ago, day_ago + timedelta(minutes=5))
    catalog = make_catalog({"EIA": {"datasets": ["a"], "dags": [busy, rare]}})
    # Window of 5 per DAG: the batch holds 10 runs, all of the busy DAG.
    collector = AirflowCollector(AirflowClient(session, settings), catalog, runs_window=5)
    assert collector.batch_limit(2) == 10
    batch, own = "/api/v1/dags/~/dagRuns/list", f"/api/v1/dags/{rare}/dagRuns"

    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert value(found, "external_dag_last_run_timestamp", dag_id=rare) == day_ago.timestamp()
    assert (
        value(found, "external_dag_last_success_timestamp", dag_id=rare)
        == (day_ago + timedelta(minutes=5)).timestamp()
    )
    assert state_of(found, rare)["success"] == 1.0
    assert value(found, "external_dag_last_run_timestamp", dag_id=busy) == minute(29).timestamp()
    # The rare DAG missed the shared window: one request of its own.
    assert paths(fake) == sorted(["/api/v1/dags", batch, own])

    # Nothing new: its finished runs are kept, two requests for two DAGs.
    assert samples(await collector.collect(Deadline.in_seconds(5))) == found
    assert paths(fake) == sorted(["/api/v1/dags", batch])

    # It starts a run, then the busy DAG pushes it out of the window before the
    # next scrape: the window no longer reaches back to what was kept, so it is asked again.
    long_run = fake.add_run(rare, "long", "running", minute(30), minute(30))
    busy_runs(31, 40)
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert value(found, "external_dag_last_run_timestamp", dag_id=rare) == minute(30).timestamp()
    assert state_of(found, rare)["running"] == 1.0
    assert paths(fake) == sorted(["/api/v1/dags", batch, own])

    # A run still going is asked for every scrape (its state will change) ...
    await collector.collect(Deadline.in_seconds(5))
    assert paths(fake) == sorted(["/api/v1/dags", batch, own])
    long_run.state, long_run.end_date = "success", minute(45)
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert state_of(found, rare)["success"] == 1.0
    assert value(found, "external_dag_last_success_timestamp", dag_id=rare) == (
        minute(45).timestamp()
    )
    assert paths(fake) == sorted(["/api/v1/dags", batch, own])
    # ... and kept once finished.
    assert samples(await collector.collect(Deadline.in_seconds(5))) == found
    assert paths(fake) == sorted(["/api/v1/dags", batch])

    # A new run of the rare DAG is in the window by itself: no own request.
    fake.add_run(rare, "manual", "running", t0 - timedelta(days=3), minute(50), run_type="manual")
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert value(found, "external_dag_last_run_timestamp", dag_id=rare) == minute(50).timestamp()
    assert state_of(found, rare)["running"] == 1.0
    assert paths(fake) == sorted(["/api/v1/dags", batch])


async def test_steady_state_is_two_requests_for_any_number_of_dags(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    dags = [f"external_feed_{i}" for i in range(6)]
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    for n, dag in enumerate(dags):
        fake.add_dag(dag, is_paused=n % 2 == 0)
        for i in range(3):
            start = t0 + timedelta(minutes=10 * i + n)
            fake.add_run(
                dag,
                f"r{i}",
                "success" if i else "failed",
                start,
                start,
                start + timedelta(minutes=1),
            )
    catalog = make_catalog({"EIA": {"datasets": ["a"], "dags": dags}})
    collector = AirflowCollector(AirflowClient(session, settings), catalog, runs_window=5)
    found = samples(await collector.collect(Deadline.in_seconds(5)))
    for n, dag in enumerate(dags):
        newest = t0 + timedelta(minutes=20 + n)
        assert value(found, "external_dag_last_run_timestamp", dag_id=dag) == newest.timestamp()
        assert (
            value(found, "external_dag_last_success_timestamp", dag_id=dag)
            == (newest + timedelta(minutes=1)).timestamp()
        )
        assert value(found, "external_dag_paused", dag_id=dag) == (1.0 if n % 2 == 0 else 0.0)
    # Version detection, once although the first two requests go out together.
    assert sorted(p for _, p in fake.requests if p.endswith("/health")) == [
        "/api/v1/health",
        "/api/v2/monitor/health",
    ]
    # The six DAGs' list fits one page of the ids' common substring; one batch.
    assert paths(fake) == sorted(["/api/v1/dags", "/api/v1/dags/~/dagRuns/list"])
    await collector.collect(Deadline.in_seconds(5))
    assert paths(fake) == sorted(["/api/v1/dags", "/api/v1/dags/~/dagRuns/list"])
