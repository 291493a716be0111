"""Crash consistency across replicas: the replica running an incident is SIGKILLed
between an action's call and its record, for every action, and the survivor ends
with exactly one effect of each kind and the exact restore on recovery.

Two real Alertmanagers in a cluster post to two ``feedguard-responder`` processes
on one redis-server.  Kubernetes, runtime-config, Airflow (2, ``/api/v1``) and
SeaTunnel are the local fakes; in front of them a ``HeldAnswer`` lets the armed
request change the fake, then holds its answer: the test kills the replica that
sent it (the one holding the incident's lease), releases the answer into the
void, starts the replica again on its port, and arms the next action's call.
The survivor takes over when the lease (short here) runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from .support.alertmanager import (
    alertmanager_cluster,
    alertmanager_config,
    cluster_status,
    post_alerts,
    rfc3339,
)
from .support.fake_airflow2 import FakeAirflow2
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.fake_seatunnel import FakeSeaTunnel
from .support.replicas import Fakes, Replica, replica_of_peer, running_replicas, serve_held
from .support.responder import wait_for
from .support.services import Service

pytestmark = pytest.mark.slow

BEARER = "crash-webhook-token"
NS, CM, KEY = "aurum-dev", "aurum-api-config", "AURUM_API_RATE_LIMIT_RPS"
CACHE, INGEST_FEATURE = "external_read_cache", "external_ingest"
INGEST_DAG, FALLBACK_DAG, BACKFILL_DAG = (
    "external_data_ingest",
    "external_data_fallback",
    "external_data_backfill",
)
VARIABLE = "external_provider_config"
JOB = "isone-lmp-to-kafka"
PROVIDER = "ISO-NE"

# The effect call of each action (method, path suffix), in playbook order.
FIRING = {
    "throttle_api": ("PATCH", f"/namespaces/{NS}/configmaps/{CM}"),
    "pause_dags": ("PATCH", f"/api/v1/dags/{INGEST_DAG}"),
    "read_cache": ("POST", f"/features/{CACHE}"),
    # Also before a call: the replica dies after reading the value, before its intent
    # and its POST; the next one reads afresh and sets it once.  (Not read_cache's
    # GET: a replica starting up reads that feature as its start-up check.)
    "before reduce_batch_size": ("GET", f"/features/{INGEST_FEATURE}"),
    "reduce_batch_size": ("POST", f"/features/{INGEST_FEATURE}"),
    "disable_feeds": ("PATCH", f"/api/v1/variables/{VARIABLE}"),
    "pause_streaming": ("POST", "/stop-job"),
    "trigger_fallback": ("POST", f"/api/v1/dags/{FALLBACK_DAG}/dagRuns"),
}
# Recovery: the backfill, then "revert all", newest change first.
RECOVERY = {
    "trigger_backfill": ("POST", f"/api/v1/dags/{BACKFILL_DAG}/dagRuns"),
    "revert pause_streaming": ("POST", "/submit-job"),
    "revert disable_feeds": FIRING["disable_feeds"],
    "revert reduce_batch_size": ("POST", f"/features/{INGEST_FEATURE}"),
    "revert read_cache": FIRING["read_cache"],
    "revert pause_dags": FIRING["pause_dags"],
    "revert throttle_api": FIRING["throttle_api"],
}
PLAYBOOK = {
    "name": "provider-down",
    "matchers": ['alertname="ExternalProviderDown"'],
    "firing": [{"action": name} for name in FIRING if " " not in name],
    "resolved": [{"action": "trigger_backfill"}, {"revert": "all"}],
}
VARIABLE_VALUE = json.dumps(
    {"providers": [{"name": PROVIDER, "enabled": True, "datasets": ["lmp"]}]}, sort_keys=True
)


@dataclass
class World:
    kube: FakeKubernetes
    runtime: FakeRuntimeConfig
    airflow: FakeAirflow2
    seatunnel: FakeSeaTunnel
    fakes: Fakes
    replicas: list[Replica]
    alertmanagers: list[Service]
    redis: redis.Redis
    started: dt.datetime = dataclasses.field(
        default_factory=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    )

    def snapshot(self) -> dict[str, Any]:
        """Everything the actions change, as it is now."""
        configmap = self.kube.configmaps[(NS, CM)]
        return {
            "configmap": dict(configmap.get("data") or {}),
            "annotations": dict(configmap["metadata"].get("annotations") or {}),
            "features": copy.deepcopy(self.runtime.features),
            "paused": {d.dag_id: d.is_paused for d in self.airflow.dags.values()},
            "variable": (self.airflow.variables.get(VARIABLE) or {}).get("value"),
            "jobs": sorted(j.status for j in self.seatunnel.by_name(JOB)),
        }

    def effects(self) -> dict[str, int]:
        """How many times each kind of change reached its system."""
        airflow = self.airflow.requests
        return {
            "configmap patches": len(self.kube.patches()),
            "cache posts": len(self.runtime.posts(CACHE)),
            "batch size posts": len(self.runtime.posts(INGEST_FEATURE)),
            "dag patches": sum(
                1 for m, p in airflow if m == "PATCH" and p.startswith(f"/api/v1/dags/{INGEST_DAG}")
            ),
            "variable writes": sum(
                1 for m, p in airflow if m in ("PATCH", "POST", "DELETE") and "/variables" in p
            ),
            "job stops": len(self.seatunnel.posts("/stop-job")),
            "job submits": len(self.seatunnel.posts("/submit-job")),
            "fallback runs": sum(1 for r in self.airflow.runs if r.dag_id == FALLBACK_DAG),
            "backfill runs": sum(1 for r in self.airflow.runs if r.dag_id == BACKFILL_DAG),
        }

    async def incident(self) -> dict[str, Any] | None:
        for replica in self.replicas:
            if replica.alive:
                with contextlib.suppress(OSError, ValueError):
                    return await asyncio.to_thread(_incident, replica)
        return None

    async def post(self, ends: dt.datetime | None = None) -> None:
        """Prometheus sends the alert to every Alertmanager of the cluster."""
        body: dict[str, Any] = {
            "labels": {
                "alertname": "ExternalProviderDown",
                "provider": PROVIDER,
                "severity": "page",
                "team": "data-platform",
            },
            "annotations": {"summary": f"{PROVIDER} health probe failing"},
            # One start for every post: without it each Alertmanager stamps its own
            # "now" on the resolving post, and the peers' merge reads as a new firing.
            "startsAt": rfc3339(self.started),
        }
        if ends is not None:
            body["endsAt"] = rfc3339(ends)
        for am in self.alertmanagers:
            await asyncio.to_thread(post_alerts, am, [body])

    async def resolve(self) -> None:
        await self.post(ends=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))


def _incident(replica: Replica) -> dict[str, Any] | None:
    import urllib.request

    with urllib.request.urlopen(f"{replica.url}/api/v1/incidents", timeout=2) as response:
        rows = json.load(response)["incidents"]
    if not rows:
        return None
    ident = rows[0]["id"]
    with urllib.request.urlopen(f"{replica.url}/api/v1/incidents/{ident}", timeout=2) as response:
        doc: dict[str, Any] = json.load(response)
    return doc


def responder_yaml(tmp_path: Path, redis_url: str, urls: dict[str, str]) -> dict[str, Any]:
    job_config = tmp_path / f"{JOB}.json"
    job_config.write_text(json.dumps({"env": {"job.name": JOB}, "source": [], "sink": []}))
    catalog = tmp_path / "catalog.yml"
    catalog.write_text(
        json.dumps(
            {
                "providers": [
                    {
                        "name": PROVIDER,
                        "datasets": ["lmp"],
                        "dags": [INGEST_DAG],
                        "fallback_mirror": True,
                        "streaming_jobs": [{"name": JOB, "config_file": str(job_config)}],
                    }
                ]
            }
        )
    )
    return {
        "catalog_file": str(catalog),
        "dry_run": False,
        "store": {"backend": "redis"},
        "redis": {"url": redis_url, "socket_timeout_seconds": 1},
        "webhook": {"bearer_token": BEARER},
        "features": {"token": "crash-flags-token"},
        "log": {"format": "json"},
        # The shortest lease allowed (3 s, 3 x the Redis socket timeout): kept by the
        # heartbeat while a call runs, it runs out within 3 s of the kill.
        "executor": {
            "attempts": 2,
            "timeout_seconds": 10,
            "lease_seconds": 3,
            "backoff_initial_seconds": 0.01,
        },
        "scheduler": {"tick_seconds": 0.2},
        "playbooks": [PLAYBOOK],
        "actions": {
            "kubernetes": {"host": urls["kube"], "token": "sa-token", "timeout_seconds": 5},
            "runtime_config": {"base_url": urls["runtime"], "token": "rc-token"},
            "airflow": {
                "base_url": urls["airflow"],
                "version": "2",
                "username": "admin",
                "password": "secret",
            },
            "seatunnel": {"base_url": urls["seatunnel"]},
            "streaming": {"poll_seconds": 0.05, "savepoint_timeout_seconds": 1},
        },
    }


@contextlib.asynccontextmanager
async def world(tmp_path: Path, redis_url: str) -> AsyncIterator[World]:
    kube = FakeKubernetes()
    kube.grant("sa-token", names=[(NS, CM)])
    kube.put(NS, CM, {KEY: "200", "AURUM_API_TIMEOUT": "30"})
    runtime = FakeRuntimeConfig.with_features([CACHE, INGEST_FEATURE], token="rc-token")
    runtime.features[INGEST_FEATURE]["configuration"] = {"batch_size": 5000, "workers": 4}
    airflow = FakeAirflow2()
    for dag_id in (INGEST_DAG, FALLBACK_DAG, BACKFILL_DAG):
        airflow.add_dag(dag_id)
    airflow.variables[VARIABLE] = {"value": VARIABLE_VALUE, "description": None}
    seatunnel = FakeSeaTunnel()
    seatunnel.add(JOB)
    apps = {
        "kube": kube.app(),
        "runtime": runtime.app(),
        "airflow": airflow.app(),
        "seatunnel": seatunnel.app(),
    }
    async with serve_held(apps) as fakes:
        config = responder_yaml(tmp_path, redis_url, fakes.urls)
        replicas = [Replica.create(tmp_path, f"responder-{n}", config) for n in range(2)]
        am_config = alertmanager_config([r.webhook_url for r in replicas], bearer_token=BEARER)
        async with contextlib.AsyncExitStack() as stack:
            cluster = alertmanager_cluster(tmp_path, am_config)
            ams = await asyncio.to_thread(cluster.__enter__)
            stack.push_async_callback(asyncio.to_thread, cluster.__exit__, None, None, None)
            await stack.enter_async_context(running_replicas(replicas))

            async def clustered() -> bool:
                status = await asyncio.to_thread(cluster_status, ams[0])
                return len(status["cluster"].get("peers") or []) == 2

            await wait_for(clustered, within=60)
            client = redis.Redis.from_url(redis_url)
            stack.callback(client.close)
            yield World(kube, runtime, airflow, seatunnel, fakes, replicas, ams, client)


async def kill_at_each(w: World, calls: dict[str, tuple[str, str]], start: Awaitable[None]) -> None:
    """Arm the first call, ``start``, then for each call: kill its sender while its
    answer is held, release it, bring the replica back, arm the next call."""
    names = list(calls)
    w.fakes.hold.arm(*calls[names[0]])
    await start
    restarts = []
    for index in range(len(names)):
        sent = await w.fakes.hold.wait()
        victim = replica_of_peer(w.replicas, sent)
        victim.kill()
        if index + 1 < len(names):
            w.fakes.hold.arm(*calls[names[index + 1]])
        else:
            w.fakes.hold.disarm()
        w.fakes.hold.release()
        restarts.append(asyncio.create_task(victim.restart()))
        # The survivor goes on with the incident once the lease ran out; the next
        # armed call is held until the loop comes round.
    await asyncio.gather(*restarts)
    held = w.fakes.hold.held[-len(names) :]
    assert [m for m, _ in held] == [calls[n][0] for n in names]


async def in_state(w: World, state: str) -> bool:
    doc = await w.incident()
    return doc is not None and doc["state"] == state


ONE_EACH = {
    "configmap patches": 2,  # throttle, restore
    "cache posts": 2,
    "batch size posts": 2,
    "dag patches": 2,  # pause, unpause
    "variable writes": 2,  # disable the feed, the previous value back
    "job stops": 1,
    "job submits": 1,
    "fallback runs": 1,
    "backfill runs": 1,
}

# What each firing record says the target was before the incident.
PREVIOUS = {
    "throttle_api": "200",
    "pause_dags": False,
    "read_cache": {"enabled": False, "configuration": {}},
    "reduce_batch_size": {"present": True, "value": 5000},
    "disable_feeds": {
        "value": VARIABLE_VALUE,
        "published": VARIABLE_VALUE.replace('"enabled": true', '"enabled": false'),
        "was_enabled": True,
    },
    "pause_streaming": {"stopped_by_feedguard": True, "job_id": "900000000001"},
    "trigger_fallback": None,
}


def assert_exact_restore(w: World, before: dict[str, Any], doc: dict[str, Any]) -> None:
    # Both replicas' logs on failure: who did what before the kill.
    assert w.effects() == ONE_EACH, [r.log()[-4000:] for r in w.replicas]
    after = w.snapshot()
    assert after["configmap"] == before["configmap"]
    assert not [a for a in after["annotations"] if a.startswith("feedguard.io/")]
    assert after["features"] == before["features"]
    assert after["paused"] == before["paused"]
    assert after["variable"] == before["variable"]
    assert after["jobs"] == before["jobs"]  # resubmitted from its savepoint under its id
    assert doc["state"] == "resolved"
    failures = [a for a in doc["actions"] if a["result"] == "failure"]
    assert failures == [], failures


async def test_sigkill_between_each_call_and_its_record(tmp_path: Path, redis_url: str) -> None:
    """One incident, 15 kills: at each firing call (and once before one), then at the
    backfill and each revert; one world for both phases, so set-up is paid once."""
    async with world(tmp_path, redis_url) as w:
        before = w.snapshot()
        await kill_at_each(w, FIRING, w.post())
        await wait_for(lambda: in_state(w, "stabilised"), within=120)
        await kill_at_each(w, RECOVERY, w.resolve())
        await wait_for(lambda: in_state(w, "resolved"), within=120)
        doc = await w.incident()
        assert doc is not None
        assert_exact_restore(w, before, doc)
        # Each call was made by a replica that died before recording it: the survivor
        # found every change already made, and recorded the value from before it.
        for phase, calls in (("firing", FIRING), ("recovery", RECOVERY)):
            names = {n.split()[-1] for n in calls}
            killed = [a for a in doc["actions"] if a["phase"] == phase and a["action"] in names]
            assert len(killed) == len(names), phase
            for record in killed:
                assert record["detail"]["changed"] is False, record
                assert "already_held_by" not in record["detail"], record
        previous = {a["action"]: a["previous"] for a in doc["actions"] if a["phase"] == "firing"}
        stopped = previous["pause_streaming"]
        previous["pause_streaming"] = {k: stopped[k] for k in ("stopped_by_feedguard", "job_id")}
        assert previous == PREVIOUS
        assert sum(r.kills for r in w.replicas) == len(FIRING) + len(RECOVERY)
