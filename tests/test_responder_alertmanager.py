"""Real Alertmanagers posting to the responder: one alone, and an HA pair with two replicas."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest

from .conftest import make_catalog
from .support.alertmanager import (
    alertmanager,
    alertmanager_cluster,
    alertmanager_config,
    cluster_status,
    post_alerts,
    rfc3339,
)
from .support.responder import (
    BEARER,
    CountingAction,
    Responder,
    responder_config,
    start_responder,
    wait_for,
)

pytestmark = pytest.mark.slow

LABELS = {
    "alertname": "ExternalProviderDown",
    "provider": "ISO-NE",
    "severity": "page",
    "team": "data-platform",
}


def am_alert(ends: dt.datetime | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "labels": LABELS,
        "annotations": {"summary": "ISO-NE health probe failing"},
        "generatorURL": "http://prometheus.local/graph",
    }
    if ends is not None:
        body["endsAt"] = rfc3339(ends)
    return body


def counting() -> dict[str, CountingAction]:
    return {
        "throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate"),
        "pause_dags": CountingAction("pause_dags", resource="airflow:dag:ingest"),
        "trigger_backfill": CountingAction("trigger_backfill", reversible=False),
    }


async def incident_in(r: Responder, state: str) -> dict[str, object] | None:
    rows = await r.incidents()
    return rows[0] if rows and rows[0]["state"] == state else None


def accepted(metrics_text: str) -> float:
    found = re.search(
        r'^feedguard_responder_notifications_total\{result="accepted"\} (\S+)$', metrics_text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def test_alertmanager_posts_and_incident_is_visible(tmp_path: Path) -> None:
    catalog = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})  # no probe: recovers on resolve
    config = responder_config(tmp_path, catalog=catalog)
    acts = counting()
    async with start_responder(config, actions=acts, background=True) as r:
        am_config = alertmanager_config([r.webhook_url], bearer_token=BEARER)
        with alertmanager(tmp_path, am_config) as am:
            await asyncio.to_thread(post_alerts, am, [am_alert()])
            row = await wait_for(lambda: incident_in(r, "stabilised"))
            incident = await r.get_json(f"/api/v1/incidents/{row['id']}")
            assert incident["provider"] == "ISO-NE"
            assert [a["alertname"] for a in incident["alerts"]] == ["ExternalProviderDown"]
            assert 'provider="ISO-NE"' in incident["group_keys"][0]
            assert len(acts["throttle_api"].applied) == 1

            ended = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await asyncio.to_thread(post_alerts, am, [am_alert(ends=ended)])
            await wait_for(lambda: incident_in(r, "resolved"))
            assert len(acts["trigger_backfill"].applied) == 1
            assert acts["throttle_api"].value == "100"


async def test_ha_alertmanagers_and_replicas_run_each_step_once(
    tmp_path: Path, redis_url: str
) -> None:
    catalog = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})
    acts = counting()  # shared by both replicas: counts calls across them
    configs = [
        responder_config(
            tmp_path / f"r{n}",
            catalog=catalog,
            store="redis",
            redis_url=redis_url,
            scheduler={"tick_seconds": 0.2},
        )
        for n in range(2)
    ]
    async with (
        start_responder(configs[0], actions=acts, background=True) as r1,
        start_responder(configs[1], actions=acts, background=True) as r2,
    ):
        am_config = alertmanager_config([r1.webhook_url, r2.webhook_url], bearer_token=BEARER)
        with alertmanager_cluster(tmp_path, am_config) as (am1, am2):

            async def clustered() -> bool:
                status = await asyncio.to_thread(cluster_status, am1)
                return len(status["cluster"].get("peers") or []) == 2

            await wait_for(clustered)
            # Prometheus sends every alert to every Alertmanager of the cluster.
            await asyncio.to_thread(post_alerts, am1, [am_alert()])
            await asyncio.to_thread(post_alerts, am2, [am_alert()])
            await wait_for(lambda: incident_in(r1, "stabilised"))

            async def both_delivered() -> bool:
                return accepted(await r1.metrics()) >= 1 and accepted(await r2.metrics()) >= 1

            # Each replica got the notification at least once (one Alertmanager posts to
            # both URLs; its peer may post again after its peer timeout).
            await wait_for(both_delivered)
            for name in ("throttle_api", "pause_dags"):
                assert len(acts[name].applied) == 1, (name, acts[name].applied)
            rows = await r2.incidents()
            assert len(rows) == 1
            duplicates = sum(
                float(m.group(1))
                for text in (await r1.metrics(), await r2.metrics())
                for m in [
                    re.search(
                        r"^feedguard_responder_duplicates_suppressed_total (\S+)$", text, re.M
                    )
                ]
                if m
            )
            assert duplicates >= 1

            ended = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await asyncio.to_thread(post_alerts, am1, [am_alert(ends=ended)])
            await asyncio.to_thread(post_alerts, am2, [am_alert(ends=ended)])
            await wait_for(lambda: incident_in(r2, "resolved"))
            assert len(acts["trigger_backfill"].applied) == 1
            assert len(acts["throttle_api"].reverted) == 1
            assert len(acts["pause_dags"].reverted) == 1
