"""The webhook's refusals record nothing; accepted payloads are recorded exactly once."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import make_catalog
from .support.responder import (
    T0,
    CountingAction,
    alert,
    counting_actions,
    notification,
    resolved,
    responder_config,
    start_responder,
)
from .support.services import free_port

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}, "OLD": {"enabled": False}})


def counting() -> dict[str, CountingAction]:
    return counting_actions()


async def assert_nothing_recorded(r: Any, acts: dict[str, CountingAction]) -> None:
    assert await r.incidents() == []
    assert (await r.get_json("/api/v1/ignored"))["ignored"] == []
    assert all(not a.applied for a in acts.values())
    # The transition refused before was not remembered: it is new now.
    response = await r.post(notification([alert("ISO-NE")]))
    assert response.status == 200
    assert (await response.json())["new"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"alertmanager:secret").decode()},
        {"Authorization": "bearer"},
    ],
    ids=["none", "wrong-bearer", "basic-not-configured", "empty-bearer"],
)
async def test_unauthorized_records_nothing(tmp_path: Path, headers: dict[str, str]) -> None:
    acts = counting()
    async with start_responder(responder_config(tmp_path, catalog=CATALOG), actions=acts) as r:
        response = await r.post(notification([alert("ISO-NE")]), token=None, headers=headers)
        assert response.status == 401
        await r.settle()
        assert 'feedguard_responder_notifications_total{result="unauthorized"} 1.0' in (
            await r.metrics()
        )
        await assert_nothing_recorded(r, acts)


async def test_basic_auth(tmp_path: Path) -> None:
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        webhook={"bearer_token": None, "basic_username": "am", "basic_password": "s3cret"},
    )
    good = "Basic " + base64.b64encode(b"am:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"am:s3cre").decode()
    async with start_responder(config, actions=counting()) as r:
        body = notification([alert("ISO-NE")])
        assert (await r.post(body, token=None, headers={"Authorization": bad})).status == 401
        assert (await r.post(body, token=None, headers={"Authorization": good})).status == 200


async def test_too_large_records_nothing(tmp_path: Path) -> None:
    acts = counting()
    config = responder_config(tmp_path, catalog=CATALOG, webhook={"max_body_bytes": 4096})
    async with start_responder(config, actions=acts) as r:
        big = notification([alert("ISO-NE", padding="x" * 5000)])
        response = await r.post(big)
        assert response.status == 413
        # Chunked, without Content-Length: refused once the limit is passed.
        data = json.dumps(big).encode()

        async def chunks() -> Any:
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        async with r.session.post(
            r.webhook_url, data=chunks(), headers={"Authorization": "Bearer test-webhook-token"}
        ) as chunked:
            assert chunked.status == 413
        await assert_nothing_recorded(r, acts)


INVALID: list[tuple[Any, str]] = [
    (b"{not json", "invalid JSON"),
    ([], "<root>: expected a JSON object"),
    ({**notification([alert("ISO-NE")]), "version": "3"}, "version: expected '4'"),
    ({k: v for k, v in notification([alert("ISO-NE")]).items() if k != "groupKey"}, "groupKey"),
    ({**notification([alert("ISO-NE")]), "status": "pending"}, "status: expected"),
    ({**notification([alert("ISO-NE")]), "alerts": {}}, "alerts: expected an array"),
    (
        notification([alert("ISO-NE"), {**alert("ISO-NE"), "startsAt": "yesterday"}]),
        "alerts[1].startsAt: not an RFC 3339 timestamp",
    ),
    (notification([{**alert("ISO-NE"), "fingerprint": ""}]), "alerts[0].fingerprint"),
    (
        {**notification([alert("ISO-NE")]), "alerts": [{**alert("ISO-NE"), "labels": {"x": 7}}]},
        "alerts[0].labels.x: expected a string",
    ),
    ({**notification([alert("ISO-NE")]), "truncatedAlerts": -1}, "truncatedAlerts"),
]


@pytest.mark.parametrize(("body", "message"), INVALID)
async def test_invalid_payload_names_the_field(tmp_path: Path, body: Any, message: str) -> None:
    acts = counting()
    async with start_responder(responder_config(tmp_path, catalog=CATALOG), actions=acts) as r:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await r.post(raw, headers={"Content-Type": "application/json"})
        assert response.status == 400
        async with r.session.post(
            r.webhook_url, data=raw, headers={"Authorization": "Bearer test-webhook-token"}
        ) as again:
            assert message in (await again.json())["error"]
        await r.settle()
        await assert_nothing_recorded(r, acts)


async def test_store_unavailable_answers_503(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    config = responder_config(tmp_path, catalog=CATALOG, store="redis", redis_url=dead)
    async with start_responder(config, actions=counting()) as r:
        assert (await r.post(notification([alert("ISO-NE")]))).status == 503
        async with r.session.get(r.url + "/readyz") as ready:
            assert ready.status == 503
        async with r.session.get(r.url + "/healthz") as live:
            assert live.status == 200


async def test_mixed_firing_and_resolved_and_ignored(tmp_path: Path) -> None:
    acts = counting()
    async with start_responder(responder_config(tmp_path, catalog=CATALOG), actions=acts) as r:
        first = alert("ISO-NE")
        second = alert("ISO-NE", dataset="lmp")
        body = notification([first, second, alert(None), alert("NOPE"), alert("OLD")])
        body["truncatedAlerts"] = 2
        body["receiver"] = "feedguard\\.webhook"  # receivers arrive regex-escaped
        response = await r.post(body)
        assert response.status == 200
        assert await response.json() == {"status": "accepted", "new": 5, "duplicates": 0}
        await r.settle()
        ignored = (await r.get_json("/api/v1/ignored"))["ignored"]
        assert sorted(i["reason"] for i in ignored) == [
            "alert has no provider label",
            "provider 'NOPE' is not in the catalog",
            "provider 'OLD' is disabled in the catalog",
        ]
        # One incident for the provider, whatever the number of its alerts.
        incident = await r.incident("ISO-NE")
        assert len(incident["alerts"]) == 2
        assert len(acts["throttle_api"].applied) == 1

        # One POST with a firing and a resolved alert: only the resolved one is new.
        response = await r.post(notification([resolved(first), second]))
        assert await response.json() == {"status": "accepted", "new": 1, "duplicates": 1}
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        assert incident["firing"] == 1


async def test_metrics_expose_the_webhook_histogram(tmp_path: Path) -> None:
    async with start_responder(
        responder_config(tmp_path, catalog=CATALOG), actions=counting()
    ) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        text = await r.metrics()
    for bucket in ("0.005", "0.01", "0.025", "0.05", "0.1", "0.5", "1.0", "2.0", "120.0"):
        assert f'feedguard_responder_webhook_duration_seconds_bucket{{le="{bucket}"}}' in text
    assert 'feedguard_responder_open_incidents{provider="ISO-NE",state="stabilised"} 1.0' in text
    assert 'feedguard_responder_actions_total{action="throttle_api",result="success"} 1.0' in text


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_a_resolved_alert_the_incident_never_saw_is_listed_as_ignored(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """Applied in the batch's one transaction: the incident is untouched by it, and the
    ignored list names it (on both stores)."""
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
    config = responder_config(tmp_path, catalog=CATALOG, store=store, redis_url=redis_url)
    async with start_responder(config, actions=counting()) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        opened = await r.incident("ISO-NE")
        stranger = alert("ISO-NE", dataset="never-fired", status="resolved", ends_at=T0 + 60)
        response = await r.post(notification([stranger]))
        assert await response.json() == {"status": "accepted", "new": 1, "duplicates": 0}
        await r.settle()
        incident = await r.incident("ISO-NE")
        ignored = (await r.get_json("/api/v1/ignored"))["ignored"]
    assert [(i["reason"], i["alert"]["fingerprint"]) for i in ignored] == [
        (f"alert is not part of incident {opened['id']}", stranger["fingerprint"])
    ]
    assert incident["state"] == opened["state"]
    assert len(incident["alerts"]) == 1
