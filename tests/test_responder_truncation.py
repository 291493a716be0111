"""A group Alertmanager truncated (``max_alerts``) is recovered only once Alertmanager
itself says none of its alerts still fires.

A real Alertmanager with ``max_alerts: 1`` holds three firing alerts of one
provider; the responder is shown one.  When that one resolves, the incident
recovers no earlier than the other two: the recovery gate asks Alertmanager's
API v2 and waits, saying why, while it reports alerts firing (or cannot be asked).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from .conftest import make_catalog
from .support.alertmanager import alertmanager, alertmanager_config, post_alerts, rfc3339
from .support.responder import (
    BEARER,
    Responder,
    counting_actions,
    responder_config,
    start_responder,
    wait_for,
)
from .support.services import free_port

CATALOG = make_catalog({"ISO-NE": {"datasets": ["a", "b", "c"]}})


def am_alert(dataset: str, starts: dt.datetime, ends: dt.datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": {
            "alertname": "ExternalProviderDown",
            "provider": "ISO-NE",
            "dataset": dataset,
            "severity": "page",
        },
        "startsAt": rfc3339(starts),
    }
    if ends is not None:
        body["endsAt"] = rfc3339(ends)
    return body


def events(incident: dict[str, Any]) -> list[str]:
    return [e["event"] for e in incident["timeline"]]


async def incident_where(r: Responder, check: Any) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        await r.tick()
        rows = await r.incidents()
        if not rows:
            return None
        incident = await r.incident("ISO-NE")
        return incident if check(incident) else None

    result: dict[str, Any] = await wait_for(found, within=60, interval=0.2)
    return result


async def test_truncated_group_recovers_only_when_alertmanager_says_none_fires(
    tmp_path: Path,
) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/webhook/alertmanager"
    am_config = alertmanager_config([hook], bearer_token=BEARER, max_alerts=1)
    acts = counting_actions()
    with alertmanager(tmp_path, am_config) as am:
        config = responder_config(
            tmp_path, catalog=CATALOG, alertmanager={"url": am.url, "timeout_seconds": 5}
        )
        async with start_responder(config, actions=acts, port=port) as r:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            await asyncio.to_thread(post_alerts, am, [am_alert(d, start) for d in "abc"])

            # Shown one alert of three: the incident says its picture is incomplete.  On a
            # loaded machine group_wait can flush before all three are in the group, so
            # wait for the notification that counts both hidden ones.
            incident = await incident_where(
                r, lambda i: (i.get("truncation") or {}).get("truncated_alerts") == 2
            )
            assert incident["truncation"]["group_labels"] == {"provider": "ISO-NE"}
            assert any(e.startswith("picture incomplete") for e in events(incident))
            assert [a["labels"]["dataset"] for a in incident["alerts"]] == ["a"]
            assert (
                'feedguard_responder_incident_truncated_alerts{provider="ISO-NE"} 2.0'
                in await r.metrics()
            )

            # The shown alert resolves, the hidden two still fire: recovery waits.
            now = dt.datetime.now(dt.UTC)
            await asyncio.to_thread(post_alerts, am, [am_alert("a", start, now)])
            incident = await incident_where(
                r, lambda i: (i["truncation"] or {}).get("waiting") is not None
            )
            assert incident["state"] == "recovering"
            assert incident["truncation"]["waiting"] == (
                'Alertmanager has 2 alerts firing for {provider="ISO-NE"}'
            )
            assert not acts["trigger_backfill"].applied
            assert acts["throttle_api"].reverted == []

            # Alertmanager says none fires any more: the picture is complete, recovery runs.
            now = dt.datetime.now(dt.UTC)
            await asyncio.to_thread(
                post_alerts, am, [am_alert("b", start, now), am_alert("c", start, now)]
            )
            incident = await incident_where(r, lambda i: i["state"] == "resolved")
            assert incident["truncation"]["completed_at"] is not None
            assert any(e.startswith("picture complete") for e in events(incident))
            assert len(acts["trigger_backfill"].applied) == 1
            assert len(acts["throttle_api"].reverted) == 1
            assert "feedguard_responder_incident_truncated_alerts{" not in await r.metrics()


async def test_without_alertmanager_a_truncated_group_waits_and_says_so(tmp_path: Path) -> None:
    from .support.responder import alert, notification, resolved

    acts = counting_actions()
    config = responder_config(tmp_path, catalog=CATALOG)  # no alertmanager.url
    async with start_responder(config, actions=acts) as r:
        firing = alert("ISO-NE")
        body = notification([firing])
        body["truncatedAlerts"] = 5
        assert (await r.post(body)).status == 200
        await r.settle()
        resolved_body = notification([resolved(firing)])
        resolved_body["truncatedAlerts"] = 5
        assert (await r.post(resolved_body)).status == 200
        await r.settle()
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "recovering"
        assert incident["truncation"]["waiting"] == (
            "cannot ask Alertmanager which alerts still fire: alertmanager.url is not set"
        )
        assert not acts["trigger_backfill"].applied
