"""The Airflow REST client against a real Airflow 3 and against the Airflow 2 stand-in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from feedguard.core.airflow import AirflowClient, common_substring
from feedguard.core.airflow_api import (
    AirflowAuthError,
    AirflowConflict,
    AirflowError,
    AirflowNotFound,
    AirflowSettings,
    AirflowUnavailable,
)

from .support.airflow import AirflowInstance, resign_jwt
from .support.fake_airflow2 import FakeAirflow2
from .support.request_counter import (  # noqa: F401  # the fixtures are used by name
    RequestCounter,
    counter_fixture,
    session_fixture,
)
from .support.services import free_port

DAG = "feedguard_client_test"


@pytest.fixture
def clean_dag(airflow_instance: AirflowInstance) -> Iterator[str]:
    airflow_instance.clear_runs(DAG)
    yield DAG
    airflow_instance.clear_runs(DAG)


# --- Airflow 3, for real ----------------------------------------------------------


@pytest.mark.airflow
async def test_detects_airflow_3_and_reads_a_dag(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession
) -> None:
    client = AirflowClient(session, airflow_instance.settings(version="auto"))
    assert await client.version() == 3
    dag = await client.get_dag(DAG)
    assert dag.dag_id == DAG
    assert dag.is_paused is airflow_instance.is_paused(DAG)


@pytest.mark.airflow
async def test_pause_and_unpause(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, clean_dag: str
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    assert (await client.set_paused(clean_dag, False)).is_paused is False
    assert airflow_instance.is_paused(clean_dag) is False
    assert (await client.set_paused(clean_dag, True)).is_paused is True
    assert airflow_instance.is_paused(clean_dag) is True


@pytest.mark.airflow
async def test_trigger_runs_and_lists_newest_start_first(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, clean_dag: str
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    first = await client.trigger(clean_dag, {"window": "a"}, dag_run_id="client-first")
    assert first.dag_run_id == "client-first"
    assert first.state == "queued"  # paused DAG: stays queued
    assert first.run_type == "manual"
    assert first.conf == {"window": "a"}
    await client.set_paused(clean_dag, False)
    airflow_instance.wait_for_run(clean_dag, "client-first")
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    second = await client.trigger(clean_dag, {}, dag_run_id="client-second", logical_date=when)
    assert second.logical_date == when
    done = airflow_instance.wait_for_run(clean_dag, "client-second")
    assert done["state"] == "success"

    runs = await client.list_runs(clean_dag, limit=10)
    # Newest start first, though the second run's logical date is days older.
    assert [r.dag_run_id for r in runs] == ["client-second", "client-first"]
    assert runs[0].start_timestamp is not None
    assert runs[1].start_timestamp is not None
    assert runs[0].start_timestamp >= runs[1].start_timestamp
    assert runs[0].end_date is not None
    assert runs[0].state == "success"

    only = await client.list_runs(clean_dag, limit=10, states=["failed"])
    assert only == []


@pytest.mark.airflow
async def test_naive_logical_date_is_refused_before_sending(
    airflow_instance: AirflowInstance,
    session: aiohttp.ClientSession,
    clean_dag: str,
    counter: RequestCounter,
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.trigger(clean_dag, {}, logical_date=datetime(2024, 1, 1))
    assert not [r for r in counter.sent if r[0] == "POST" and "dagRuns" in r[1]]
    assert airflow_instance.runs(clean_dag) == []


@pytest.mark.airflow
async def test_unknown_dag_is_not_found(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    with pytest.raises(AirflowNotFound) as caught:
        await client.get_dag("no_such_dag")
    assert caught.value.status == 404
    assert "no_such_dag" in caught.value.detail
    with pytest.raises(AirflowNotFound):
        await client.trigger("no_such_dag", {})
    with pytest.raises(AirflowNotFound):
        await client.set_paused("no_such_dag", True)


@pytest.mark.airflow
async def test_duplicate_run_id_conflicts(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, clean_dag: str
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    await client.trigger(clean_dag, {}, dag_run_id="client-dup")
    with pytest.raises(AirflowConflict) as caught:
        await client.trigger(clean_dag, {}, dag_run_id="client-dup")
    assert caught.value.status == 409
    assert len(airflow_instance.runs(clean_dag)) == 1


@pytest.mark.airflow
async def test_list_dags_in_one_request(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, counter: RequestCounter
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    await client.version()
    await client.get_dag(DAG)  # token fetched
    counter.sent.clear()
    wanted = ["external_data_ingest", "external_backfill", "no_such_dag"]
    found = await client.list_dags(wanted)
    assert set(found) == {"external_data_ingest", "external_backfill"}
    # One list call (pipe-OR pattern); it was read whole, so no_such_dag is proven absent.
    assert counter.sent == [("GET", "/api/v2/dags")]


@pytest.mark.airflow
async def test_runs_of_several_dags_in_one_batch_request(
    airflow_instance: AirflowInstance,
    session: aiohttp.ClientSession,
    counter: RequestCounter,
    clean_dag: str,
) -> None:
    # The DAG stays paused: triggered runs stay queued, which is quick and enough here.
    airflow_instance.trigger(clean_dag, "batch-1")
    airflow_instance.trigger(clean_dag, "batch-2")
    client = AirflowClient(session, airflow_instance.settings())
    await client.get_dag(clean_dag)  # token fetched
    counter.sent.clear()
    page = await client.list_runs_batch([clean_dag, "no_such_dag"], limit=1, order_by="-id")
    assert counter.sent == [("POST", "/api/v2/dags/~/dagRuns/list")]
    assert [(r.dag_id, r.dag_run_id, r.state) for r in page.runs] == [
        (clean_dag, "batch-2", "queued")
    ]
    assert (page.total_entries, page.complete) == (2, False)
    whole = await client.list_runs_batch([clean_dag], limit=5)
    assert {r.dag_run_id for r in whole.runs} == {"batch-1", "batch-2"}
    assert whole.complete
    none = await client.list_runs_batch([clean_dag], states=["success"])
    assert (none.runs, none.total_entries) == ([], 0)
    with pytest.raises(AirflowError) as caught:
        await client.list_runs_batch([clean_dag], order_by="-no_such_field")
    assert caught.value.status == 400
    with pytest.raises(ValueError, match="at least one dag_id"):
        await client.list_runs_batch([])


@pytest.mark.airflow
@pytest.mark.parametrize("kind", ["foreign-secret", "expired"])
async def test_stale_token_is_replaced_once(
    airflow_instance: AirflowInstance,
    session: aiohttp.ClientSession,
    counter: RequestCounter,
    kind: str,
) -> None:
    real = airflow_instance.token(fresh=True)
    if kind == "foreign-secret":
        stale = resign_jwt(real, "another-instance-" + "x" * 47)
        expected = 403
    else:
        stale = resign_jwt(real, airflow_instance.jwt_secret, exp=int(time.time()) - 60)
        expected = 401
    # The premise: Airflow itself refuses the stale token.
    airflow_instance._token = stale
    status, _ = airflow_instance.api("GET", f"/dags/{DAG}")
    airflow_instance._token = None
    assert status == expected

    client = AirflowClient(session, airflow_instance.settings())
    client._token = stale  # as if it had been fetched before a restart / long ago
    dag = await client.get_dag(DAG)
    assert dag.dag_id == DAG
    assert counter.sent == [
        ("GET", f"/api/v2/dags/{DAG}"),
        ("POST", "/auth/token"),
        ("GET", f"/api/v2/dags/{DAG}"),
    ]
    # The new token is kept: the next call goes straight through.
    counter.sent.clear()
    await client.get_dag(DAG)
    assert counter.sent == [("GET", f"/api/v2/dags/{DAG}")]


@pytest.mark.airflow
async def test_wrong_password_is_an_auth_error(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession
) -> None:
    client = AirflowClient(session, airflow_instance.settings(password="wrong"))
    with pytest.raises(AirflowAuthError) as caught:
        await client.get_dag(DAG)
    assert caught.value.status in (401, 403)


async def test_nothing_listening_is_unavailable(session: aiohttp.ClientSession) -> None:
    settings = AirflowSettings(base_url=f"http://127.0.0.1:{free_port()}", password="x")
    client = AirflowClient(session, settings)
    with pytest.raises(AirflowUnavailable) as caught:
        await client.get_dag(DAG)
    assert caught.value.status == 0


# --- Airflow 2, against the documented /api/v1 -------------------------------------


@pytest.fixture
async def airflow2(aiohttp_server: Any) -> tuple[FakeAirflow2, str]:
    fake = FakeAirflow2(username="admin", password="s3cret")
    fake.add_dag("external_data_ingest", is_paused=False)
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def v2_settings(base_url: str, **overrides: Any) -> AirflowSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "base_url": base_url,
        "username": "admin",
        "password": "s3cret",
    }
    values.update(overrides)
    return AirflowSettings(**values)


async def test_v2_detected_and_basic_auth(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    client = AirflowClient(session, v2_settings(url))
    assert await client.version() == 2
    dag = await client.get_dag("external_data_ingest")
    assert dag.is_paused is False
    paused = await client.set_paused("external_data_ingest", True)
    assert paused.is_paused is True
    assert fake.dags["external_data_ingest"].is_paused is True
    assert ("PATCH", "/api/v1/dags/external_data_ingest?update_mask=is_paused") in fake.requests


async def test_v2_wrong_password_is_an_auth_error(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    _, url = airflow2
    client = AirflowClient(session, v2_settings(url, password="nope", version="2"))
    with pytest.raises(AirflowAuthError) as caught:
        await client.get_dag("external_data_ingest")
    assert caught.value.status == 401
    assert caught.value.detail == "Unauthorized"


async def test_v2_trigger_conflict_and_not_found(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    client = AirflowClient(session, v2_settings(url, version=2))
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    run = await client.trigger("external_data_ingest", {"k": 1}, dag_run_id="r1", logical_date=when)
    assert (run.dag_run_id, run.logical_date, run.state, run.conf) == (
        "r1",
        when,
        "queued",
        {"k": 1},
    )
    plain = await client.trigger("external_data_ingest", {})
    assert plain.run_type == "manual"
    with pytest.raises(AirflowConflict, match="already exists"):
        await client.trigger("external_data_ingest", {}, dag_run_id="r1")
    with pytest.raises(AirflowNotFound, match="not found"):
        await client.trigger("missing", {})
    assert len(fake.runs) == 2


async def test_v2_runs_order_and_states(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    fake.add_run("external_data_ingest", "old", "success", t0, t0, t0 + timedelta(minutes=1))
    fake.add_run(
        "external_data_ingest",
        "new",
        "failed",
        t0 - timedelta(days=1),  # backfill: old logical date, newest start
        t0 + timedelta(hours=1),
        t0 + timedelta(hours=1, minutes=1),
    )
    client = AirflowClient(session, v2_settings(url))
    runs = await client.list_runs("external_data_ingest", limit=5)
    assert [r.dag_run_id for r in runs] == ["new", "old"]
    assert runs[0].start_timestamp == (t0 + timedelta(hours=1)).timestamp()
    ok = await client.list_runs("external_data_ingest", limit=5, states=["success"])
    assert [r.dag_run_id for r in ok] == ["old"]
    with pytest.raises(AirflowError) as caught:
        await client.list_runs("external_data_ingest", order_by="-run_after")
    assert caught.value.status == 400


async def test_v2_server_error_is_unavailable(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    fake.failure = 503
    client = AirflowClient(session, v2_settings(url))
    with pytest.raises(AirflowUnavailable) as caught:
        await client.get_dag("external_data_ingest")
    assert caught.value.status == 503


@pytest.mark.airflow
async def test_concurrent_calls_with_a_stale_token_fetch_one_new_token(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, counter: RequestCounter
) -> None:
    client = AirflowClient(session, airflow_instance.settings())
    client._token = resign_jwt(airflow_instance.token(fresh=True), "x" * 64)
    dags = await asyncio.gather(*(client.get_dag(DAG) for _ in range(5)))
    assert {d.dag_id for d in dags} == {DAG}
    assert counter.sent.count(("POST", "/auth/token")) == 1


def test_common_substring_narrows_the_airflow_2_dag_list() -> None:
    assert common_substring(["eia_ingest", "miso_ingest"]) == "_ingest"
    assert common_substring(["external_eia", "external_miso"]) == "external_"
    assert common_substring(["abc", "xyz"]) == ""
    assert common_substring(["only"]) == "only"


async def test_v2_list_dags_narrowed_by_a_common_substring(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    for i in range(150):
        fake.add_dag(f"other_{i:03d}")  # none contains the wanted ids' common "i"
    fake.add_dag("zz_backfill", is_paused=True)
    client = AirflowClient(session, v2_settings(url, version=2))
    fake.requests.clear()
    found = await client.list_dags(["external_data_ingest", "zz_backfill", "missing"])
    assert found["zz_backfill"].is_paused is True
    assert found["external_data_ingest"].is_paused is False
    assert "missing" not in found
    # One page of the matching DAGs, read whole: "missing" is proven absent without a lookup.
    assert fake.requests == [("GET", "/api/v1/dags?dag_id_pattern=i&limit=100&offset=0")]


async def test_v2_list_dags_pages_then_asks_for_the_rest(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    wanted = ["external_data_ingest", "zz_backfill", "missing"]
    shared = common_substring(wanted)
    for i in range(250):
        fake.add_dag(f"other_{shared}_{i:03d}")  # all match the pattern
    fake.add_dag("zz_backfill", is_paused=True)  # beyond the second page of 100
    client = AirflowClient(session, v2_settings(url, version=2))
    fake.requests.clear()
    found = await client.list_dags(wanted)
    assert found["zz_backfill"].is_paused is True
    assert found["external_data_ingest"].is_paused is False
    assert "missing" not in found
    paths = [p.split("?")[0] for _, p in fake.requests]
    # Pages while they cost fewer requests than one per DAG (three DAGs: two
    # pages, not the whole list of 252), then each DAG still unseen by itself.
    assert paths.count("/api/v1/dags") == 2
    assert sorted(p for p in paths if p != "/api/v1/dags") == [
        "/api/v1/dags/missing",
        "/api/v1/dags/zz_backfill",
    ]


async def test_v2_batch_runs_request(
    airflow2: tuple[FakeAirflow2, str], session: aiohttp.ClientSession
) -> None:
    fake, url = airflow2
    fake.add_dag("external_backfill")
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    fake.add_run("external_data_ingest", "a1", "success", t0, t0, t0 + timedelta(minutes=1))
    fake.add_run("external_backfill", "b1", "failed", t0, t0 + timedelta(hours=1))
    fake.add_run("external_data_ingest", "a2", "running", t0, t0 + timedelta(hours=2))
    fake.add_run("other_dag", "o1", "running", t0, t0 + timedelta(hours=3))
    client = AirflowClient(session, v2_settings(url, version=2))
    fake.requests.clear()
    page = await client.list_runs_batch(["external_data_ingest", "external_backfill"], limit=2)
    assert fake.requests == [("POST", "/api/v1/dags/~/dagRuns/list")]
    assert [r.dag_run_id for r in page.runs] == ["a2", "b1"]  # newest start first
    assert (page.total_entries, page.complete) == (3, False)
    ok = await client.list_runs_batch(
        ["external_data_ingest", "external_backfill"], states=["success", "failed"]
    )
    assert [r.dag_run_id for r in ok.runs] == ["b1", "a1"]
    assert ok.complete
    with pytest.raises(AirflowError) as caught:
        await client.list_runs_batch(["external_data_ingest"], order_by="-run_after")
    assert caught.value.status == 400
    # The documented form rejects what it does not know (e.g. the GET endpoint's "limit").
    with pytest.raises(AirflowError, match="Unknown field") as bad:
        await client.request("POST", "/dags/~/dagRuns/list", body={"limit": 5})
    assert bad.value.status == 400
