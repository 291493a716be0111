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


async def test_a_group_shown_whole_then_truncated_says_its_picture_is_incomplete(
    tmp_path: Path,
) -> None:
    """Alertmanager's first notification can flush before the other alerts join the
    group (nothing truncated); the next shows the same alert with others left out.
    Nothing new to record, yet the incident must learn it, or recovery could start
    while the hidden alerts still fire.  A repeat of it is recorded once."""
    from .support.responder import alert, notification, resolved

    acts = counting_actions()
    config = responder_config(tmp_path, catalog=CATALOG)  # no alertmanager.url
    async with start_responder(config, actions=acts) as r:
        firing = alert("ISO-NE", dataset="a")
        first = await r.post(notification([firing]))
        assert (first.status, await first.json()) == (
            200,
            {"status": "accepted", "new": 1, "duplicates": 0},
        )
        await r.settle()
        assert (await r.incident("ISO-NE"))["truncation"] is None

        truncated = notification([firing])
        truncated["truncatedAlerts"] = 2
        for _ in range(2):  # the second: Alertmanager's repeat, nothing more to learn
            answer = await r.post(truncated)
            assert await answer.json() == {"status": "accepted", "new": 0, "duplicates": 1}
            await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["truncation"]["truncated_alerts"] == 2
        assert [e for e in events(incident) if e.startswith("picture incomplete")] == [
            "picture incomplete: Alertmanager left out 2 alerts of the group (max_alerts); "
            "recovery asks Alertmanager which still fire"
        ]
        assert len(incident["alerts"]) == 1
        assert [e for e in events(incident) if e.startswith("alert firing")] == [
            "alert firing: ExternalProviderDown"
        ]

        # The shown alert resolves: recovery waits for Alertmanager (not asked here).
        body = notification([resolved(firing)])
        body["truncatedAlerts"] = 2
        assert (await r.post(body)).status == 200
        await r.settle()
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "recovering"
        assert incident["truncation"]["waiting"] is not None
        assert not acts["trigger_backfill"].applied


async def test_a_truncation_count_alone_opens_no_incident(tmp_path: Path) -> None:
    """Only a resolved alert is shown of a truncated group nobody has an incident for:
    nothing opens, and the count is kept among the ignored transitions."""
    from .support.responder import alert, notification, resolved

    config = responder_config(tmp_path, catalog=CATALOG)
    async with start_responder(config, actions=counting_actions()) as r:
        body = notification([resolved(alert("ISO-NE", dataset="a"))])
        body["truncatedAlerts"] = 3
        assert (await r.post(body)).status == 200
        await r.settle()
        assert await r.incidents() == []
        ignored = await r.get_json("/api/v1/ignored")
        reasons = sorted(e["reason"] for e in ignored["ignored"])
        assert reasons == [
            "resolved alert without an open incident",
            "truncation count without an open incident",
        ]
