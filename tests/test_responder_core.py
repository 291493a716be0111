"""The responder core end to end through its webhook: incidents, steps, recovery.

Every test runs against both stores (SQLite file, real redis-server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from feedguard.core.catalog import Catalog

from .conftest import make_catalog
from .support.responder import (
    CountingAction,
    FakeClock,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)


class Provider:
    """A local provider health endpoint whose answer the test switches."""

    def __init__(self) -> None:
        self.status = 200
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        return web.Response(status=self.status, text="health")


@pytest.fixture
async def provider() -> AsyncIterator[tuple[Provider, str]]:
    state = Provider()
    app = web.Application()
    app.router.add_get("/health", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("/health"))
    await server.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "redis":
        return {"store": "redis", "redis_url": request.getfixturevalue("redis_url")}
    return {"store": "sqlite"}


def catalog_with(probe_url: str | None) -> Catalog:
    probe = {"health_probe": {"url": probe_url, "timeout_seconds": 2}} if probe_url else {}
    return make_catalog(
        {
            "ISO-NE": {"datasets": ["lmp"], "dags": ["external_data_ingest"], **probe},
            "MISO": {"datasets": ["lmp"], **probe},
            "OLD": {"enabled": False},
        }
    )


def actions() -> dict[str, CountingAction]:
    return {
        "throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate"),
        "pause_dags": CountingAction("pause_dags", resource="airflow:dag:ingest"),
        "trigger_backfill": CountingAction("trigger_backfill", reversible=False),
    }


def events(incident: dict[str, Any]) -> list[str]:
    return [entry["event"] for entry in incident["timeline"]]


async def test_incident_life(
    tmp_path: Path, store_kwargs: dict[str, Any], provider: tuple[Provider, str]
) -> None:
    health, url = provider
    clock = FakeClock()
    config = responder_config(tmp_path, catalog=catalog_with(url), **store_kwargs)
    acts = actions()
    async with start_responder(config, clock=clock, actions=acts) as r:
        firing = alert("ISO-NE")
        response = await r.post(notification([firing]))
        assert response.status == 200
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        assert [a["action"] for a in incident["actions"]] == ["throttle_api", "pause_dags"]
        assert acts["throttle_api"].value == "50"

        # Alertmanager re-sends (repeat interval, HA peer): nothing runs again.
        assert (await r.post(notification([firing]))).status == 200
        await r.settle()
        assert len(acts["throttle_api"].applied) == 1
        assert "feedguard_responder_duplicates_suppressed_total 1.0" in await r.metrics()

        # Resolved, but the provider still fails its probe: stays recovering.
        health.status = 503
        await r.post(notification([resolved(firing)]))
        await r.settle()
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "recovering"
        assert any("probe failed: HTTP 503" in e for e in events(incident))
        assert acts["throttle_api"].value == "50"

        health.status = 200
        clock.advance(30)
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "recovering"
        assert "probe 1/2 ok (HTTP 200)" in events(incident)

        clock.advance(30)
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert "probe 2/2 ok (HTTP 200)" in events(incident)
        assert incident["state"] == "resolved", events(incident)
        assert incident["recovered_at"] == clock.now
        assert len(acts["trigger_backfill"].applied) == 1
        # Reverted newest first, to the values they replaced.
        assert [(t, p) for _, t, p in acts["pause_dags"].reverted] == [("pause_dags #0", "100")]
        assert acts["throttle_api"].value == "100"
        assert acts["pause_dags"].value == "100"
        assert len(acts["throttle_api"].reverted) == 1


async def test_dashboard_counters_start_at_zero_for_every_label_set(
    tmp_path: Path, store_kwargs: dict[str, Any], provider: tuple[Provider, str]
) -> None:
    """A counter series born at 1 hides its first event from increase(): each
    label set the dashboards read exists at 0 from the start."""
    _, url = provider
    config = responder_config(tmp_path, catalog=catalog_with(url), **store_kwargs)
    async with start_responder(config, clock=FakeClock(), actions=actions()) as r:
        text = await r.metrics()
    for action in ("throttle_api", "pause_dags", "trigger_backfill"):
        for result in ("success", "failure", "dry_run", "skipped"):
            line = f'feedguard_responder_actions_total{{action="{action}",result="{result}"}} 0.0'
            assert line in text
    for kind in ("initial", "update", "resolution"):
        for result in ("success", "failure"):
            assert f'feedguard_responder_notes_total{{kind="{kind}",result="{result}"}} 0.0' in text
    for name in ("ISO-NE", "MISO"):
        for result in ("success", "failure"):
            labels = f'provider="{name}",result="{result}"'
            assert f"feedguard_responder_recovery_probes_total{{{labels}}} 0.0" in text
    assert 'provider="OLD"' not in text
