"""Executor and scheduler behaviour: reference counting, resume, dry run, flags,
retries and circuit breaker, notes slots, recovery gate."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import redis

from feedguard.responder.isotimes import iso_utc
from feedguard.responder.plugins import JSON, NoteRequest, Outcome, StepContext, Target

from .conftest import make_catalog
from .support.incidents import T0
from .support.lineage_failure import keep_lineage_failure
from .support.responder import (
    FLAGS_TOKEN,
    CountingAction,
    FakeClock,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
    wait_for,
)

CATALOG = make_catalog(
    {
        "ISO-NE": {"datasets": ["lmp", "load"]},
        "MISO": {"datasets": ["lmp"]},
    }
)
PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [{"action": "throttle_api"}, {"action": "pause_dags"}],
        "resolved": [{"action": "trigger_backfill"}, {"revert": "all"}],
    }
]


def counting(**kwargs: Any) -> dict[str, CountingAction]:
    return {
        "throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate", **kwargs),
        "pause_dags": CountingAction("pause_dags", resource="airflow:dag:ingest"),
        "trigger_backfill": CountingAction("trigger_backfill", reversible=False),
    }


def events(incident: Mapping[str, Any]) -> list[str]:
    return [e["event"] for e in incident["timeline"]]


async def test_shared_resources_are_reference_counted(tmp_path: Path) -> None:
    acts = counting()
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    async with start_responder(config, actions=acts) as r:
        iso, miso = alert("ISO-NE"), alert("MISO")
        await r.post(notification([iso]))
        await r.settle()
        await r.post(notification([miso]))
        await r.settle()
        assert acts["throttle_api"].applied == [
            ((await r.incident("ISO-NE"))["id"], "throttle_api #0")
        ]
        miso_incident = await r.incident("MISO")
        joined = miso_incident["actions"][0]
        assert joined["detail"]["already_held_by"] == (await r.incident("ISO-NE"))["id"]

        # ISO-NE recovers first: the throttle stays on for MISO.
        await r.post(notification([resolved(iso)]))
        await r.settle()
        assert (await r.incident("ISO-NE"))["state"] == "resolved"
        assert acts["throttle_api"].reverted == []
        assert acts["throttle_api"].value == "50"

        # The last holder restores the value from before the first incident.
        await r.post(notification([resolved(miso)]))
        await r.settle()
        assert (await r.incident("MISO"))["state"] == "resolved"
        assert [p for _, _, p in acts["throttle_api"].reverted] == ["100"]
        assert acts["throttle_api"].value == "100"
        assert len(acts["trigger_backfill"].applied) == 2  # per incident, not shared


class Blocking(CountingAction):
    """apply() never returns: the process 'crashes' in the middle of the step."""

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        self.attempts += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_restart_resumes_unfinished_steps(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    first = counting()
    first["pause_dags"] = Blocking("pause_dags", resource="airflow:dag:ingest")
    async with start_responder(config, actions=first) as r:
        await r.post(notification([alert("ISO-NE")]))

        async def started() -> bool:
            return first["pause_dags"].attempts == 1

        await wait_for(started)
        # Shut down mid-step (what a SIGTERM or crash leaves behind).
    second = counting()
    async with start_responder(config, actions=second) as r:
        incident = await r.incident("ISO-NE")
        assert incident["pending_steps"] == 1
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        assert second["throttle_api"].applied == []  # done before the restart
        assert len(second["pause_dags"].applied) == 1
        assert [a["action"] for a in incident["actions"]] == ["throttle_api", "pause_dags"]


async def test_dry_run_and_feature_flags(tmp_path: Path) -> None:
    acts = counting()
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS, dry_run=True)
    auth = {"Authorization": f"Bearer {FLAGS_TOKEN}"}
    async with start_responder(config, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert [a["result"] for a in incident["actions"]] == ["dry_run", "dry_run"]
        assert all(not a.applied for a in acts.values())

        flag_url = r.url + "/runtime-config/v1/features/dry_run"
        async with r.session.get(flag_url) as response:
            assert response.status == 401
        async with r.session.get(flag_url, headers=auth) as response:
            assert await response.json() == {
                "name": "dry_run",
                "enabled": True,
                "configuration": {},
                "source": "config",
            }
        async with r.session.post(flag_url, json={"enabled": "no"}, headers=auth) as response:
            assert response.status == 400
            assert "enabled" in (await response.json())["error"]
        async with r.session.post(
            r.url + "/runtime-config/v1/features/action.nope", json={"enabled": False}, headers=auth
        ) as response:
            assert response.status == 404
        async with r.session.post(flag_url, json={"enabled": False}, headers=auth) as response:
            assert response.status == 200
        async with r.session.post(
            r.url + "/runtime-config/v1/features/action.pause_dags",
            json={"enabled": False, "configuration": {}},
            headers=auth,
        ) as response:
            assert response.status == 200

        await r.post(notification([alert("MISO")]))
        await r.settle()
        incident = await r.incident("MISO")
        assert [(a["action"], a["result"]) for a in incident["actions"]] == [
            ("throttle_api", "success"),
            ("pause_dags", "skipped"),
        ]
        assert len(acts["throttle_api"].applied) == 1
        assert acts["pause_dags"].applied == []


async def test_retries_then_success_and_non_retryable_failure(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    acts = counting(fail_times=2)
    async with start_responder(config, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        assert incident["actions"][0]["detail"]["attempts"] == 3

    acts = counting(fail_times=10, retryable=False)
    config = responder_config(tmp_path / "b", catalog=CATALOG, playbooks=PLAYBOOKS)
    async with start_responder(config, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "needs_attention"
        failed = incident["actions"][0]
        assert failed["result"] == "failure"
        assert failed["error"] == "throttle_api refused (HTTP 503)"
        assert acts["throttle_api"].attempts == 1
        assert 'feedguard_responder_actions_total{action="throttle_api",result="failure"} 1.0' in (
            await r.metrics()
        )


async def test_circuit_breaker_opens_and_half_opens(tmp_path: Path) -> None:
    clock = FakeClock()
    only_throttle = [{**PLAYBOOKS[0], "firing": [{"action": "throttle_api"}]}]
    config = responder_config(
        tmp_path, catalog=CATALOG, playbooks=only_throttle, executor={"attempts": 3}
    )
    acts = counting(fail_times=100)
    async with start_responder(config, clock=clock, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        await r.post(notification([alert("MISO")]))
        await r.settle()
        # 3 attempts for ISO-NE, 2 more open the breaker (5), MISO's 3rd is refused fast.
        assert acts["throttle_api"].attempts == 5
        text = await r.metrics()
        assert 'feedguard_responder_circuit_breaker_open{circuit="test"} 1.0' in text
        miso = await r.incident("MISO")
        assert "circuit 'test' is open" in miso["actions"][0]["error"]

        clock.advance(301)  # half-open: one trial goes through
        acts["throttle_api"].fail_times = 0
        assert r.engine.breakers.snapshot()["test"]["open"]
        r.engine.breakers.before_call("test")
        r.engine.breakers.success("test")
        assert 'circuit_breaker_open{circuit="test"} 0.0' in await r.metrics()


class Notes:
    """A test Notifier recording requests; can fail or block."""

    def __init__(self) -> None:
        self.requests: list[NoteRequest] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def post(self, request: NoteRequest) -> Mapping[str, JSON]:
        if self.gate is not None:
            await self.gate.wait()
        self.requests.append(request)
        if self.fail:
            raise RuntimeError("slack said no")
        return {"slack_ts": "1.0"} if request.kind == "initial" else {}

    async def find(self, request: NoteRequest, since: float) -> Mapping[str, JSON] | None:
        return None  # no replica of these tests dies mid-post

    def kinds(self) -> list[tuple[str, int]]:
        return [(q.kind, q.slot) for q in self.requests]


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_notes_one_per_slot_across_replicas(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    clock = FakeClock()
    extra: dict[str, Any] = {}
    if store == "redis":
        extra = {"store": "redis", "redis_url": request.getfixturevalue("redis_url")}
    notes = Notes()
    acts = counting()
    configs = [
        responder_config(tmp_path / f"{n}", catalog=CATALOG, playbooks=PLAYBOOKS, **extra)
        for n in range(2 if store == "redis" else 1)
    ]
    async with start_responder(configs[0], clock=clock, actions=acts, notifier=notes) as r1:
        replicas = [r1]
        second = None
        if len(configs) > 1:
            second = start_responder(configs[1], clock=clock, actions=acts, notifier=notes)
            replicas.append(await second.__aenter__())
        try:
            firing = alert("ISO-NE")
            await r1.post(notification([firing]))
            await r1.settle()
            assert notes.kinds() == [("initial", 0)]
            assert notes.requests[0].next_update_at == clock.now + 3600
            clock.advance(3600)
            await asyncio.gather(*(r.tick() for r in replicas))
            await asyncio.gather(*(r.tick() for r in replicas))
            clock.advance(3600)
            await asyncio.gather(*(r.tick() for r in replicas))
            assert notes.kinds() == [("initial", 0), ("update", 1), ("update", 2)]
            assert (
                notes.requests[2].next_update_at == notes.requests[0].incident.opened_at + 3 * 3600
            )
            incident = await r1.incident("ISO-NE")
            assert incident["notes"] == {"slack_ts": "1.0"}

            await r1.post(notification([resolved(firing)]))
            await r1.settle()
            await asyncio.gather(*(r.tick() for r in replicas))
            assert notes.kinds()[-1] == ("resolution", 0)
            assert notes.kinds().count(("resolution", 0)) == 1
            assert notes.requests[-1].next_update_at is None
            clock.advance(7200)
            await asyncio.gather(*(r.tick() for r in replicas))
            assert len(notes.requests) == 4
        finally:
            if second is not None:
                await second.__aexit__(None, None, None)


async def test_note_failure_is_recorded_and_never_delays_steps(tmp_path: Path) -> None:
    notes = Notes()
    notes.gate = asyncio.Event()  # Slack hangs
    notes.fail = True
    acts = counting()
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    async with start_responder(config, actions=acts, notifier=notes) as r:
        await r.post(notification([alert("ISO-NE")]))

        async def stabilised() -> bool:
            return bool(
                (await r.incidents()) and (await r.incident("ISO-NE"))["state"] == "stabilised"
            )

        await wait_for(stabilised)
        assert notes.requests == []  # still hanging, remediation done anyway
        notes.gate.set()
        await r.settle()
        incident = await r.incident("ISO-NE")
        failed = [e for e in incident["timeline"] if e["event"] == "note failed: initial:0"]
        assert failed[0]["error"] == "RuntimeError: slack said no"
        assert 'feedguard_responder_notes_total{kind="initial",result="failure"} 1.0' in (
            await r.metrics()
        )


async def test_fires_again_while_recovering_resets_the_streak(tmp_path: Path) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    app = web.Application()
    app.router.add_get("/health", _ok)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    catalog = make_catalog(
        {"ISO-NE": {"datasets": ["lmp"], "health_probe": {"url": str(server.make_url("/health"))}}}
    )
    clock = FakeClock()
    acts = counting()
    config = responder_config(tmp_path, catalog=catalog, playbooks=PLAYBOOKS)
    try:
        async with start_responder(config, clock=clock, actions=acts) as r:
            firing = alert("ISO-NE")
            await r.post(notification([firing]))
            await r.settle()
            await r.post(notification([resolved(firing)]))
            await r.settle()
            assert "probe 1/2 ok (HTTP 200)" in events(await r.incident("ISO-NE"))
            again = alert("ISO-NE", starts_at=clock.advance(10))
            await r.post(notification([again]))
            await r.settle()
            incident = await r.incident("ISO-NE")
            assert incident["state"] == "stabilised"
            assert "alert fired again while recovering: probe streak reset" in events(incident)
            assert acts["throttle_api"].reverted == []
            assert len(acts["throttle_api"].applied) == 1
    finally:
        await server.close()


async def _ok(request: Any) -> Any:
    from aiohttp import web

    return web.Response(text="ok")


async def test_last_success_before_is_read_from_redis(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("external:last_success:ISO-NE:lmp", "1700000100.5")
    redis_client.set("external:last_success:ISO-NE:load", "1700000000")
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS, redis_url=redis_url)
    async with start_responder(config, actions=counting()) as r:
        await r.post(notification([alert("ISO-NE"), alert("MISO")]))
        await r.settle()
        assert (await r.incident("ISO-NE"))["last_success_before"] == 1700000000.0
        assert (await r.incident("MISO"))["last_success_before"] is None


async def test_a_recent_lineage_failure_is_carried_by_the_next_incident(
    tmp_path: Path, redis_url: str
) -> None:
    clock = FakeClock(T0)
    await keep_lineage_failure(redis_url, "ISO-NE", T0 - 600, "provider answered 503")
    # More than a day old: history, not the cause of this incident.
    await keep_lineage_failure(redis_url, "MISO", T0 - 25 * 3600, "old failure")
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS, redis_url=redis_url)
    async with start_responder(config, clock=clock, actions=counting()) as r:
        await r.post(notification([alert("ISO-NE"), alert("MISO")]))
        await r.settle()
        assert (await r.incident("ISO-NE"))["lineage_failure"] == {
            "job": "external_data_ingest.run",
            "event_type": "FAIL",
            "message": "provider answered 503",
            "at": T0 - 600,
            "at_iso": iso_utc(T0 - 600),
        }
        assert (await r.incident("MISO"))["lineage_failure"] is None


async def test_failed_firing_step_then_recovery_resolves(tmp_path: Path) -> None:
    acts = counting()
    acts["pause_dags"] = CountingAction("pause_dags", fail_times=10, retryable=False)
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    async with start_responder(config, actions=acts) as r:
        firing = alert("ISO-NE")
        await r.post(notification([firing]))
        await r.settle()
        assert (await r.incident("ISO-NE"))["state"] == "needs_attention"
        await r.post(notification([resolved(firing)]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "resolved"
        assert acts["pause_dags"].reverted == []  # never applied, nothing to undo
        assert acts["throttle_api"].value == "100"


async def test_failed_recovery_step_needs_attention(tmp_path: Path) -> None:
    acts = counting()
    acts["trigger_backfill"] = CountingAction(
        "trigger_backfill", reversible=False, fail_times=10, retryable=False
    )
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    async with start_responder(config, actions=acts) as r:
        firing = alert("ISO-NE")
        await r.post(notification([firing]))
        await r.settle()
        await r.post(notification([resolved(firing)]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "needs_attention"
        assert acts["throttle_api"].value == "100"  # the reverts still ran


async def test_per_action_dry_run_and_flags_survive_restart(tmp_path: Path) -> None:
    acts = counting()
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        playbooks=PLAYBOOKS,
        action_options={"pause_dags": {"dry_run": True}},
    )
    auth = {"Authorization": f"Bearer {FLAGS_TOKEN}"}
    async with start_responder(config, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert [(a["action"], a["result"]) for a in incident["actions"]] == [
            ("throttle_api", "success"),
            ("pause_dags", "dry_run"),
        ]
        assert acts["pause_dags"].applied == []
        async with r.session.post(
            r.url + "/runtime-config/v1/features/action.throttle_api",
            json={"enabled": False},
            headers=auth,
        ) as response:
            assert response.status == 200
    async with start_responder(config, actions=acts) as r:
        async with r.session.get(
            r.url + "/runtime-config/v1/features/action.throttle_api", headers=auth
        ) as response:
            flag = await response.json()
        assert flag["enabled"] is False
        assert flag["source"] == "runtime"
        await r.post(notification([alert("MISO")]))
        await r.settle()
        miso = await r.incident("MISO")
        assert miso["actions"][0]["result"] == "skipped"


async def test_operator_retries_failed_steps(tmp_path: Path) -> None:
    acts = counting()
    acts["pause_dags"] = CountingAction("pause_dags", fail_times=3)
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    async with start_responder(config, actions=acts) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "needs_attention"
        url = f"{r.url}/api/v1/incidents/{incident['id']}/retry"
        async with r.session.post(url) as response:
            assert response.status == 401
        auth = {"Authorization": f"Bearer {FLAGS_TOKEN}"}
        async with r.session.post(url, headers=auth) as response:
            assert response.status == 202
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        assert [(a["action"], a["result"]) for a in incident["actions"]] == [
            ("throttle_api", "success"),
            ("pause_dags", "success"),
        ]
        assert len(acts["throttle_api"].applied) == 1
        async with r.session.post(f"{r.url}/api/v1/incidents/nope/retry", headers=auth) as response:
            assert response.status == 404
