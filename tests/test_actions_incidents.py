"""Whole incidents through the webhook: the responder core with the real actions.

Kubernetes and the runtime-config API are local stand-ins, Airflow is the real
Airflow 3 test instance, the providers' health endpoints are a local server
whose answers the tests flip.  Time is the test's clock; ``Engine.tick()``
performs what the background loop would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from feedguard.core.schema import load_model
from feedguard.responder import appkeys
from feedguard.responder.app import create_app
from feedguard.responder.config import ResponderConfig
from feedguard.responder.engine import Engine

from .support.airflow import AirflowInstance
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.openapi_check import CheckedResponse

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

NS, CM, KEY = "aurum-dev", "aurum-api-config", "AURUM_API_RATE_LIMIT_RPS"
FEATURE = "external_read_cache"
INGEST, BACKFILL = "external_data_ingest", "external_backfill"
FALLBACK_DAG, BACKFILL_DAG = "external_data_fallback", "external_data_backfill"
DAY = 86_400.0
INTERVAL = 30.0

# The recommended playbook of docs/actions.md (runbook 3 on firing, 5 in its order).
PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [
            {"action": "throttle_api"},
            {"action": "pause_dags"},
            {"action": "read_cache"},
            {"action": "trigger_fallback"},
        ],
        "resolved": [
            {"revert": "pause_dags"},
            {"action": "trigger_backfill"},
            {"revert": "read_cache"},
            {"revert": "throttle_api"},
        ],
    }
]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclasses.dataclass
class Providers:
    """Health endpoints of the providers: GET /<name> answers ``status[name]``."""

    status: dict[str, int]
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status.get(request.match_info["name"], 404))


@dataclasses.dataclass
class World:
    kube: FakeKubernetes
    runtime: FakeRuntimeConfig
    providers: Providers
    airflow: AirflowInstance
    config: ResponderConfig
    clock: Clock
    redis: redis.Redis


@pytest.fixture
def paused_state(airflow_instance: AirflowInstance) -> Iterator[None]:
    """The ingest DAG running, external_backfill paused by an operator; restored after."""
    airflow_instance.set_paused(INGEST, False)
    airflow_instance.set_paused(BACKFILL, True)
    yield
    airflow_instance.set_paused(INGEST, True)
    airflow_instance.set_paused(BACKFILL, True)


@pytest.fixture
async def world(
    tmp_path: Path,
    airflow_instance: AirflowInstance,
    redis_url: str,
    redis_client: redis.Redis,
    paused_state: None,
) -> AsyncIterator[World]:
    kube = FakeKubernetes()
    kube.grant("sa-token", names=[(NS, CM)])
    kube.put(NS, CM, {KEY: "200", "AURUM_API_TIMEOUT": "30"})
    runtime = FakeRuntimeConfig.with_features([FEATURE], token="rc-token")
    providers = Providers(status={"ISO-NE": 503, "MISO": 503})
    app = web.Application()
    app.router.add_get("/{name}", providers.handle)
    health = TestServer(app, host="127.0.0.1")
    await health.start_server()
    providers.url = str(health.make_url("")).rstrip("/")
    async with kube.serve() as kube_url, runtime.serve() as runtime_url:
        data = {
            "store": {"backend": "sqlite", "sqlite_path": str(tmp_path / "responder.db")},
            "redis": {"url": redis_url},
            "executor": {"attempts": 2, "backoff_initial_seconds": 0, "timeout_seconds": 20},
            "recovery": {"probes_required": 2, "probe_interval_seconds": INTERVAL},
            "playbooks": PLAYBOOKS,
            "actions": {
                "airflow": {
                    "base_url": airflow_instance.base_url,
                    "version": "3",
                    "username": airflow_instance.username,
                    "password": airflow_instance.password,
                    "timeout_seconds": 10,
                },
                "kubernetes": {"host": kube_url, "token": "sa-token", "timeout_seconds": 5},
                "runtime_config": {"base_url": runtime_url, "token": "rc-token"},
            },
            "catalog": {
                "providers": [
                    {
                        "name": name,
                        "datasets": ["lmp_realtime_5min"],
                        "health_probe": {"url": f"{providers.url}/{name}", "timeout_seconds": 2},
                        "fallback_mirror": name == "ISO-NE",
                        "dags": [INGEST, BACKFILL],
                    }
                    for name in ("ISO-NE", "MISO")
                ]
            },
        }
        config = load_model(ResponderConfig, data, "<test>")
        yield World(kube, runtime, providers, airflow_instance, config, Clock(), redis_client)
    await health.close()


@contextlib.asynccontextmanager
async def responder(world: World) -> AsyncIterator[tuple[TestClient[Any, Any], Engine]]:
    """One responder process: the app from create_app, ticked by the test."""
    app = create_app(world.config, clock=world.clock, background=False)
    async with TestClient(
        TestServer(app, host="127.0.0.1"), response_class=CheckedResponse
    ) as client:
        yield client, app[appkeys.ENGINE]


async def clients_checked(client: TestClient[Any, Any]) -> dict[str, Any]:
    """/readyz's clients once each has been checked at least once (bounded wait)."""
    for _ in range(400):
        clients: dict[str, Any] = (await (await client.get("/readyz")).json())["clients"]
        if clients and all(c["attempts"] and c["checked_at"] for c in clients.values()):
            return clients
        await asyncio.sleep(0.025)
    raise AssertionError(f"start-up checks not done: {clients}")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def notification(provider: str, status: str, starts_at: float, ends_at: float | None = None) -> Any:
    labels = {
        "alertname": "ExternalProviderDown",
        "provider": provider,
        "severity": "page",
        "team": "data-platform",
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="ExternalProviderDown", provider="{provider}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "feedguard",
        "groupLabels": {"alertname": "ExternalProviderDown", "provider": provider},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{provider} health probe failing"},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": f"{provider} health probe failing"},
                "startsAt": iso(starts_at),
                "endsAt": iso(ends_at) if ends_at else "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": f"fp-{provider.lower()}-{int(starts_at)}",
            }
        ],
    }


async def post(client: TestClient[Any, Any], engine: Engine, body: Any) -> None:
    response = await client.post("/webhook/alertmanager", json=body)
    assert response.status == 200, await response.text()
    await engine.settle()


async def tick(engine: Engine) -> None:
    await engine.tick()
    await engine.settle()


async def incident(client: TestClient[Any, Any], provider: str) -> dict[str, Any]:
    response = await client.get("/api/v1/incidents")
    listing = await response.json()
    items = listing["incidents"] if isinstance(listing, dict) else listing
    (summary,) = [i for i in items if i["provider"] == provider]
    response = await client.get(f"/api/v1/incidents/{summary['id']}")
    return dict(await response.json())


def results(doc: dict[str, Any], phase: str) -> list[tuple[str, str, str]]:
    return [(r["action"], r["target"], r["result"]) for r in doc["actions"] if r["phase"] == phase]


def runs_of(airflow: AirflowInstance, dag_id: str, incident_id: str) -> list[dict[str, Any]]:
    return [r for r in airflow.runs(dag_id) if r["dag_run_id"].endswith(incident_id)]


def last_success(world: World, provider: str, at: float) -> None:
    world.redis.set(f"external:last_success:{provider}:lmp_realtime_5min", at)


async def recover(world: World, client: TestClient[Any, Any], engine: Engine, name: str) -> None:
    """Two healthy probes, INTERVAL apart."""
    world.providers.status[name] = 200
    for _ in range(2):
        world.clock.advance(INTERVAL)
        await tick(engine)


# --- one provider, the whole runbook ---------------------------------------------------


async def test_provider_outage_end_to_end(world: World) -> None:
    clock = world.clock
    outage_start = clock.now - 2 * DAY  # the last good load, two days ago
    last_success(world, "ISO-NE", outage_start)
    firing = notification("ISO-NE", "firing", clock.now - 60)

    async with responder(world) as (client, engine):
        await post(client, engine, firing)
        await tick(engine)
        doc = await incident(client, "ISO-NE")
        assert doc["state"] == "stabilised", doc["timeline"]

        # Stabilised: rate limit 50, ingest paused, external_backfill left as the
        # operator had it, cache on, fallback triggered for ISO-NE.
        assert world.kube.data(NS, CM)[KEY] == "50"
        assert world.airflow.is_paused(INGEST)
        assert world.airflow.is_paused(BACKFILL)
        assert world.runtime.features[FEATURE]["enabled"] is True
        (fallback,) = runs_of(world.airflow, FALLBACK_DAG, doc["id"])
        assert fallback["conf"] == {"provider": "ISO-NE"}
        pause_records = {r["target"]: r for r in doc["actions"] if r["action"] == "pause_dags"}
        assert pause_records[f"pause DAG {INGEST}"]["previous"] is False
        assert pause_records[f"pause DAG {BACKFILL}"]["previous"] is True

        # The repeat Alertmanager sends every repeat_interval changes nothing.
        clock.advance(300)
        await post(client, engine, firing)
        await tick(engine)
        assert len(world.kube.patches()) == 1
        assert len(world.runtime.posts(FEATURE)) == 1

        # Resolved, but the provider still fails its probe: recovery waits.
        clock.advance(600)
        await post(
            client, engine, notification("ISO-NE", "resolved", firing_start(firing), clock.now)
        )
        await tick(engine)
        doc = await incident(client, "ISO-NE")
        assert doc["state"] == "recovering"
        assert any("probe failed" in e["event"] for e in doc["timeline"])
        assert world.kube.data(NS, CM)[KEY] == "50"
        assert world.airflow.is_paused(INGEST)

        # One healthy probe is not enough.
        world.providers.status["ISO-NE"] = 200
        clock.advance(INTERVAL)
        await tick(engine)
        assert (await incident(client, "ISO-NE"))["state"] == "recovering"
        assert world.runtime.features[FEATURE]["enabled"] is True

        clock.advance(INTERVAL)
        await tick(engine)
        doc = await incident(client, "ISO-NE")
        assert doc["state"] == "resolved", doc["timeline"]
        recovered_at = doc["recovered_at"]

    # Undone exactly: the value from before, the annotation gone, other keys untouched.
    assert world.kube.data(NS, CM) == {KEY: "200", "AURUM_API_TIMEOUT": "30"}
    assert "annotations" not in world.kube.configmaps[(NS, CM)]["metadata"]
    assert not world.airflow.is_paused(INGEST)
    assert world.airflow.is_paused(BACKFILL)  # paused by the operator: still paused
    assert world.runtime.posts(FEATURE) == [
        {"enabled": True, "configuration": {"ttl_seconds": 900}},
        {"enabled": False, "configuration": {}},
    ]
    assert world.runtime.features[FEATURE] == {"enabled": False, "configuration": {}}
    (backfill,) = runs_of(world.airflow, BACKFILL_DAG, doc["id"])
    assert backfill["conf"] == {
        "provider": "ISO-NE",
        "start_date": day(outage_start),
        "end_date": day(recovered_at),
    }
    # Each action once: two PATCHes (throttle, restore), one run per trigger.
    assert len(world.kube.patches()) == 2
    assert len(runs_of(world.airflow, FALLBACK_DAG, doc["id"])) == 1
    firing_results = results(doc, "firing")
    assert len(firing_results) == len(set(firing_results)) == 5
    assert all(result == "success" for _, _, result in firing_results)
    recovery = results(doc, "recovery")
    assert [a for a, _, _ in recovery] == [
        "pause_dags",
        "pause_dags",
        "trigger_backfill",
        "read_cache",
        "throttle_api",
    ]
    # The DAG the operator had paused is left paused, and the record says so:
    # not a "success" of an undo that did not happen.
    assert {(t, r) for _, t, r in recovery if r != "success"} == {
        (f"pause DAG {BACKFILL}", "skipped")
    }
    (kept,) = [a for a in doc["actions"] if a["phase"] == "recovery" and a["result"] == "skipped"]
    assert kept["detail"]["why"] == "left alone: was paused before feedguard; kept paused"
    assert "restored" not in kept["detail"]
    assert kept["reverts"] is not None


def firing_start(body: Any) -> float:
    return datetime.fromisoformat(body["alerts"][0]["startsAt"].replace("Z", "+00:00")).timestamp()


def day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


# --- two providers down at once ----------------------------------------------------------


async def test_concurrent_incidents_share_and_restore_once(world: World) -> None:
    clock = world.clock
    iso_fire = notification("ISO-NE", "firing", clock.now - 60)
    async with responder(world) as (client, engine):
        await post(client, engine, iso_fire)
        await tick(engine)
        clock.advance(60)
        miso_fire = notification("MISO", "firing", clock.now - 30)
        await post(client, engine, miso_fire)
        await tick(engine)
        iso, miso = await incident(client, "ISO-NE"), await incident(client, "MISO")
        assert iso["state"] == miso["state"] == "stabilised"
        assert len(world.kube.patches()) == 1  # MISO joined the throttle
        assert len(world.runtime.posts(FEATURE)) == 1
        assert runs_of(world.airflow, FALLBACK_DAG, miso["id"]) == []  # no mirror

        # ISO-NE recovers first: everything shared stays in place.
        clock.advance(300)
        await post(
            client, engine, notification("ISO-NE", "resolved", firing_start(iso_fire), clock.now)
        )
        await recover(world, client, engine, "ISO-NE")
        iso = await incident(client, "ISO-NE")
        assert iso["state"] == "resolved", iso["timeline"]
        assert world.kube.data(NS, CM)[KEY] == "50"
        assert world.runtime.features[FEATURE]["enabled"] is True
        assert world.airflow.is_paused(INGEST)
        assert len(runs_of(world.airflow, BACKFILL_DAG, iso["id"])) == 1
        deferred = [
            r for r in iso["actions"] if r["phase"] == "recovery" and r["result"] == "skipped"
        ]
        assert {r["action"] for r in deferred} >= {"throttle_api", "read_cache", "pause_dags"}
        for record in deferred:
            # It says which incident still holds the change, for the resolution note.
            assert record["detail"]["still_held_by"] == [miso["id"]]
            assert f"still held by incident {miso['id']}" in record["detail"]["why"]
            assert "restored" not in record["detail"]

        # MISO recovers last: the value from before the first incident comes back.
        clock.advance(300)
        await post(
            client, engine, notification("MISO", "resolved", firing_start(miso_fire), clock.now)
        )
        await recover(world, client, engine, "MISO")
        miso = await incident(client, "MISO")
        assert miso["state"] == "resolved", miso["timeline"]

    assert world.kube.data(NS, CM)[KEY] == "200"
    assert world.runtime.features[FEATURE]["enabled"] is False
    assert not world.airflow.is_paused(INGEST)
    assert world.airflow.is_paused(BACKFILL)
    assert len(world.kube.patches()) == 2
    assert len(world.runtime.posts(FEATURE)) == 2
    assert len(runs_of(world.airflow, BACKFILL_DAG, miso["id"])) == 1
    (restore,) = [
        r for r in miso["actions"] if r["action"] == "throttle_api" and r["phase"] == "recovery"
    ]
    assert restore["result"] == "success"


# --- a restart in the middle of recovery -------------------------------------------------


async def test_restart_during_recovery_ends_in_the_right_state(world: World) -> None:
    clock = world.clock
    fire = notification("ISO-NE", "firing", clock.now - 60)
    async with responder(world) as (client, engine):
        await post(client, engine, fire)
        await tick(engine)
        clock.advance(600)
        world.providers.status["ISO-NE"] = 200
        # The resolved notification runs probe 1 of 2 right away.
        await post(
            client, engine, notification("ISO-NE", "resolved", firing_start(fire), clock.now)
        )
        clock.advance(INTERVAL)
        # Probe 2 passes and recovery runs; the cache switch-off reaches the API,
        # then the process dies before it hears the answer.
        world.runtime.hold_answers = asyncio.Event()
        run = asyncio.create_task(engine.tick())
        await asyncio.wait_for(world.runtime.held.wait(), 30)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        doc = await incident(client, "ISO-NE")
        assert doc["state"] == "recovering"
    world.runtime.hold_answers.set()
    world.runtime.hold_answers = None
    assert world.kube.data(NS, CM)[KEY] == "50"  # not restored yet
    assert world.runtime.features[FEATURE]["enabled"] is False

    async with responder(world) as (client, engine):
        clock.advance(5)
        await tick(engine)
        doc = await incident(client, "ISO-NE")
        assert doc["state"] == "resolved", doc["timeline"]

    assert world.kube.data(NS, CM) == {KEY: "200", "AURUM_API_TIMEOUT": "30"}
    assert world.runtime.features[FEATURE]["enabled"] is False
    assert not world.airflow.is_paused(INGEST)
    assert world.airflow.is_paused(BACKFILL)
    assert len(runs_of(world.airflow, BACKFILL_DAG, doc["id"])) == 1
    assert len(runs_of(world.airflow, FALLBACK_DAG, doc["id"])) == 1
    assert len(world.kube.patches()) == 2
    recovery = [(a, res) for a, _, res in results(doc, "recovery")]
    assert recovery.count(("trigger_backfill", "success")) == 1
    assert recovery.count(("throttle_api", "success")) == 1


# --- safety: dry run, switches, retries, final errors ------------------------------------


async def test_dry_run_and_switched_off_action_change_nothing(world: World) -> None:
    world.config = world.config.model_copy(update={"dry_run": True})
    async with responder(world) as (client, engine):
        await post(client, engine, notification("ISO-NE", "firing", world.clock.now - 60))
        await tick(engine)
        doc = await incident(client, "ISO-NE")
    assert {r["result"] for r in doc["actions"]} == {"dry_run"}
    planned = {r["target"] for r in doc["actions"]}
    assert planned == {
        "set AURUM_API_RATE_LIMIT_RPS=50 in configmap aurum-dev/aurum-api-config",
        f"pause DAG {INGEST}",
        f"pause DAG {BACKFILL}",
        "switch on feature external_read_cache (ttl 900s)",
        f"trigger DAG {FALLBACK_DAG} for ISO-NE",
    }
    assert world.kube.patches() == []
    assert world.runtime.posts() == []
    assert not world.airflow.is_paused(INGEST)
    assert runs_of(world.airflow, FALLBACK_DAG, doc["id"]) == []


async def test_retryable_and_final_errors_through_the_executor(world: World) -> None:
    # Kubernetes answers 503 once (retried, then applied); runtime-config
    # refuses the token (final: one attempt, the incident says why).
    world.runtime.token = "rotated"
    async with responder(world) as (client, engine):
        # After the start-up checks (their GET must not take the injected 503).
        await clients_checked(client)
        world.kube.fail_next.append(503)
        await post(client, engine, notification("MISO", "firing", world.clock.now - 60))
        await tick(engine)
        doc = await incident(client, "MISO")
    by_action = {r["action"]: r for r in doc["actions"] if r["phase"] == "firing"}
    throttle = by_action["throttle_api"]
    assert throttle["result"] == "success"
    assert throttle["detail"]["attempts"] == 2
    assert world.kube.data(NS, CM)[KEY] == "50"
    cache = by_action["read_cache"]
    assert cache["result"] == "failure"
    assert cache["detail"]["attempts"] == 1
    assert cache["error"].count("HTTP 401") == 1  # the status is said once
    assert "feature external_read_cache" in cache["error"]
    assert world.runtime.features[FEATURE]["enabled"] is False
