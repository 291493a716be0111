"""pause_dags, trigger_fallback and trigger_backfill against a real Airflow 3 and the
Airflow 2 stand-in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowSettings
from feedguard.responder.actions.pause_dags import PauseDags
from feedguard.responder.actions.trigger_backfill import TriggerBackfill, missed_window
from feedguard.responder.actions.trigger_fallback import TriggerFallback
from feedguard.responder.plugins import ActionError, StepContext, Target

from .support.action_context import T0, context, provider
from .support.airflow import AirflowInstance
from .support.fake_airflow2 import FakeAirflow2

INGEST, BACKFILL = "external_data_ingest", "external_backfill"
FALLBACK_DAG, BACKFILL_DAG = "external_data_fallback", "external_data_backfill"
DAY = 86_400.0


@pytest.fixture
def client(airflow_instance: AirflowInstance, session: aiohttp.ClientSession) -> AirflowClient:
    return AirflowClient(session, airflow_instance.settings())


def incident_id() -> str:
    return f"inc-{uuid.uuid4().hex[:8]}"


# --- pure planning ---------------------------------------------------------------


def test_targets_follow_the_catalog() -> None:
    pause = PauseDags(client=None)  # type: ignore[arg-type]  # targets() does no I/O
    targets = pause.targets(context())
    assert [t.resource for t in targets] == [f"airflow:dag:{INGEST}", f"airflow:dag:{BACKFILL}"]
    fallback = TriggerFallback(None, FALLBACK_DAG)  # type: ignore[arg-type]
    assert fallback.targets(context(provider("MISO"))) == []
    assert fallback.targets(context(provider("EIA"))) == []
    (noaa,) = fallback.targets(context(provider("NOAA"), incident_id="i/1 x"))
    assert noaa.resource is None
    assert noaa.params["conf"] == {"provider": "NOAA"}
    assert noaa.params["dag_run_id"] == "feedguard__fallback__NOAA__i-1-x"


def test_backfill_window_is_whole_days_in_utc() -> None:
    # Last success 23:50 two days before; recovered 00:10 today: three days inclusive.
    ctx = context(last_success_before=T0 - DAY - 600, opened_at=T0 - DAY, recovered_at=T0 + 600)
    assert missed_window(ctx) == ("2025-11-24", "2025-11-26")
    # Unknown last success: from the opening; not recovered yet: until now.
    ctx = context(opened_at=T0 + 60, now=T0 + 120)
    assert missed_window(ctx) == ("2025-11-26", "2025-11-26")


# --- pause_dags on Airflow 3 -------------------------------------------------------------


@pytest.mark.airflow
async def test_pause_and_unpause_on_airflow_3(
    airflow_instance: AirflowInstance, client: AirflowClient
) -> None:
    for dag in (INGEST, BACKFILL):
        airflow_instance.set_paused(dag, False)
    action = PauseDags(client)
    ctx = context()
    targets = action.targets(ctx)
    outcomes = [await action.apply(ctx, t) for t in targets]
    assert [o.previous for o in outcomes] == [False, False]
    assert all(o.changed for o in outcomes)
    assert set(outcomes[0].detail) == {"dag_id", "running", "queued"}
    assert airflow_instance.is_paused(INGEST)
    assert airflow_instance.is_paused(BACKFILL)

    again = await action.apply(ctx, targets[0])
    # A repeat sees a paused DAG; the core keeps the first holder's previous.
    assert again.changed is False

    for target, outcome in zip(targets, outcomes, strict=True):
        back = await action.revert(ctx, target, outcome.previous)
        assert back.changed is True
    assert not airflow_instance.is_paused(INGEST)
    assert not airflow_instance.is_paused(BACKFILL)
    twice = await action.revert(ctx, targets[0], False)
    assert twice.changed is False
    airflow_instance.set_paused(INGEST, True)
    airflow_instance.set_paused(BACKFILL, True)


@pytest.mark.airflow
async def test_operator_paused_dag_stays_paused(
    airflow_instance: AirflowInstance, client: AirflowClient
) -> None:
    airflow_instance.set_paused(INGEST, True)  # an operator's `airflow dags pause`
    action = PauseDags(client)
    ctx = context(params={"dags": [INGEST]})
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert (outcome.previous, outcome.changed) == (True, False)
    back = await action.revert(ctx, target, outcome.previous)
    assert back.changed is False
    assert airflow_instance.is_paused(INGEST)


@pytest.mark.airflow
async def test_unknown_dag_and_bad_credentials_are_final(
    airflow_instance: AirflowInstance, session: aiohttp.ClientSession, client: AirflowClient
) -> None:
    action = PauseDags(client)
    ctx = context(params={"dags": ["no_such_dag"]})
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (404, False)
    assert "pause DAG no_such_dag" in str(raised.value)
    assert "404" in str(raised.value)

    wrong = AirflowClient(session, airflow_instance.settings(password="wrong"))
    (target,) = PauseDags(wrong).targets(context(params={"dags": [INGEST]}))
    with pytest.raises(ActionError) as raised:
        await PauseDags(wrong).apply(ctx, target)
    assert raised.value.retryable is False
    assert raised.value.status == 401
    assert f"pause DAG {INGEST}" in str(raised.value)


# --- triggers on Airflow 3 ----------------------------------------------------------------


@pytest.mark.airflow
async def test_fallback_triggers_once(
    airflow_instance: AirflowInstance, client: AirflowClient
) -> None:
    action = TriggerFallback(client, FALLBACK_DAG)
    ctx = context(provider("ISO-NE"), incident_id=incident_id())
    (target,) = action.targets(ctx)
    first = await action.apply(ctx, target)
    assert first.changed is True
    second = await action.apply(ctx, target)  # as after a crash before the record
    assert second.changed is False
    assert "409" in str(second.detail["note"])
    runs = [
        r
        for r in airflow_instance.runs(FALLBACK_DAG)
        if r["dag_run_id"] == target.params["dag_run_id"]
    ]
    assert len(runs) == 1
    assert runs[0]["conf"] == {"provider": "ISO-NE"}


def miso_recovered() -> StepContext:
    """A MISO incident: last success 23 Nov, recovered 26 Nov."""
    return context(
        provider("MISO"),
        incident_id=incident_id(),
        last_success_before=datetime(2025, 11, 23, 23, 59, tzinfo=UTC).timestamp(),
        opened_at=datetime(2025, 11, 24, 0, 10, tzinfo=UTC).timestamp(),
        recovered_at=datetime(2025, 11, 26, 0, 5, tzinfo=UTC).timestamp(),
    )


@pytest.mark.airflow
async def test_backfill_covers_the_missed_window(
    airflow_instance: AirflowInstance, client: AirflowClient
) -> None:
    action = TriggerBackfill(client, BACKFILL_DAG)
    ctx = miso_recovered()
    (target,) = action.targets(ctx)
    assert (await action.apply(ctx, target)).changed is True
    assert (await action.apply(ctx, target)).changed is False
    (run,) = [
        r
        for r in airflow_instance.runs(BACKFILL_DAG)
        if r["dag_run_id"] == target.params["dag_run_id"]
    ]
    assert run["conf"] == {
        "provider": "MISO",
        "start_date": "2025-11-23",
        "end_date": "2025-11-26",
    }


@pytest.mark.airflow
async def test_an_existing_run_with_another_conf_is_a_failure_not_a_backfill(
    airflow_instance: AirflowInstance, client: AirflowClient
) -> None:
    action = TriggerBackfill(client, BACKFILL_DAG)
    ctx = miso_recovered()
    (target,) = action.targets(ctx)
    dag_run_id = str(target.params["dag_run_id"])
    # Someone (or an older feedguard) took that run id for another window.
    airflow_instance.trigger(BACKFILL_DAG, dag_run_id, conf={"provider": "MISO", "day": "x"})
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (409, False)
    message = str(raised.value)
    assert f"a run {dag_run_id} already exists with another conf" in message
    assert '"day": "x"' in message
    assert '"start_date": "2025-11-23"' in message
    (run,) = [r for r in airflow_instance.runs(BACKFILL_DAG) if r["dag_run_id"] == dag_run_id]
    assert run["conf"] == {"provider": "MISO", "day": "x"}


@pytest.mark.airflow
async def test_trigger_of_unknown_dag_is_final(client: AirflowClient) -> None:
    action = TriggerBackfill(client, "no_such_backfill")
    ctx = context(incident_id=incident_id())
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (404, False)
    assert "trigger DAG no_such_backfill" in str(raised.value)
    with pytest.raises(ActionError, match="not reversible"):
        await action.revert(ctx, target, None)


# --- Airflow 2 (stand-in) -----------------------------------------------------------------


@pytest.fixture
async def airflow2(aiohttp_server) -> tuple[FakeAirflow2, AirflowSettings]:  # type: ignore[no-untyped-def]
    fake = FakeAirflow2(username="admin", password="secret")
    fake.add_dag(INGEST)
    fake.add_dag(BACKFILL, is_paused=True)
    fake.add_dag(BACKFILL_DAG)
    fake.add_run(INGEST, "scheduled__1", "running", datetime(2025, 11, 25, 23, 0, tzinfo=UTC))
    fake.add_run(INGEST, "scheduled__2", "queued", datetime(2025, 11, 25, 23, 5, tzinfo=UTC))
    fake.add_run(INGEST, "scheduled__0", "success", datetime(2025, 11, 25, 22, 0, tzinfo=UTC))
    server = await aiohttp_server(fake.app())
    settings = AirflowSettings(
        base_url=str(server.make_url("")).rstrip("/"),
        version="2",
        username="admin",
        password="secret",
    )
    return fake, settings


async def test_airflow_2_pause_captures_runs_and_respects_operator(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    action = PauseDags(AirflowClient(session, settings))
    ctx = context()
    ingest, backfill = action.targets(ctx)
    outcome = await action.apply(ctx, ingest)
    assert outcome.previous is False
    assert outcome.detail["running"] == ["scheduled__1"]
    assert outcome.detail["queued"] == ["scheduled__2"]
    assert fake.dags[INGEST].is_paused is True
    kept = await action.apply(ctx, backfill)
    assert (kept.previous, kept.changed) == (True, False)

    await action.revert(ctx, ingest, outcome.previous)
    await action.revert(ctx, backfill, kept.previous)
    assert fake.dags[INGEST].is_paused is False
    assert fake.dags[BACKFILL].is_paused is True
    assert all(path.startswith("/api/v1/") for _, path in fake.requests)


async def test_airflow_2_trigger_conflict_and_errors(
    airflow2: tuple[FakeAirflow2, AirflowSettings], session: aiohttp.ClientSession
) -> None:
    fake, settings = airflow2
    client = AirflowClient(session, settings)
    action = TriggerBackfill(client, BACKFILL_DAG)
    ctx = context(incident_id="inc-2", last_success_before=T0 - DAY, recovered_at=T0 + 60)
    (target,) = action.targets(ctx)
    assert (await action.apply(ctx, target)).changed is True
    repeat = await action.apply(ctx, target)
    assert repeat.changed is False
    (run,) = [r for r in fake.runs if r.dag_id == BACKFILL_DAG]
    assert run.conf == {"provider": "ISO-NE", "start_date": "2025-11-25", "end_date": "2025-11-26"}

    fake.failure = 503
    with pytest.raises(ActionError) as raised:
        await PauseDags(client).apply(ctx, Target("pause", "airflow:dag:x", {"dag_id": INGEST}))
    assert (raised.value.status, raised.value.retryable) == (503, True)
    fake.failure = None

    bad = AirflowClient(
        session,
        AirflowSettings(base_url=settings.base_url, version="2", username="admin", password="nope"),
    )
    with pytest.raises(ActionError) as raised:
        await TriggerFallback(bad, "external_data_fallback").apply(
            ctx,
            Target("t", None, {"dag_id": BACKFILL_DAG, "dag_run_id": "r1", "conf": {}}),
        )
    assert (raised.value.status, raised.value.retryable) == (401, False)


async def test_retry_after_a_timed_out_pause_still_unpauses(
    airflow2: tuple[FakeAirflow2, AirflowSettings],
    session: aiohttp.ClientSession,
    aiohttp_server,  # type: ignore[no-untyped-def]
) -> None:
    """Airflow pauses the DAG, but the answer comes after the client gave up."""
    fake, settings = airflow2
    release = asyncio.Event()

    async def slow_proxy(request: web.Request) -> web.StreamResponse:
        async with session.request(
            request.method,
            settings.base_url + request.path_qs,
            data=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        ) as upstream:
            body = await upstream.read()
            if request.method == "PATCH":
                await release.wait()  # applied upstream, answer delayed
            return web.Response(
                status=upstream.status, body=body, content_type=upstream.content_type
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow_proxy)
    proxy = await aiohttp_server(app)
    slow = AirflowSettings(
        base_url=str(proxy.make_url("")).rstrip("/"),
        version="2",
        username="admin",
        password="secret",
        timeout_seconds=0.5,
    )
    action = PauseDags(AirflowClient(session, slow))
    ctx = context(params={"dags": [INGEST]})
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert raised.value.retryable is True
    assert fake.dags[INGEST].is_paused is True
    release.set()
    retry = await action.apply(ctx, target)
    assert (retry.previous, retry.changed) == (False, False)
    await action.revert(ctx, target, retry.previous)
    assert fake.dags[INGEST].is_paused is False
