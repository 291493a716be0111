"""The OpenAPI document: valid 3.1, served as /openapi.json, and the answers keep to it.

(Every responder test's answers are checked by tests/support/openapi_check.py;
these tests pin the document itself, the ISO times and the security headers.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts as versions
from openapi_spec_validator.versions.shortcuts import get_spec_version

from feedguard.core.http_security import CONTENT_SECURITY_POLICY
from feedguard.responder.isotimes import iso_utc, with_iso_times
from feedguard.responder.openapi import load_spec

from .conftest import make_catalog
from .support.openapi_check import check_answer
from .support.responder import (
    FLAGS_TOKEN,
    T0,
    CountingAction,
    FakeClock,
    alert,
    notification,
    responder_config,
    start_responder,
)


def test_the_document_is_valid_openapi_3_1() -> None:
    spec = load_spec()
    validate(spec)
    assert get_spec_version(spec) == versions.OPENAPIV31


def test_every_route_of_the_app_is_in_the_document(tmp_path: Path) -> None:
    from feedguard.responder.app import create_app

    config = responder_config(tmp_path, catalog=make_catalog({"ISO-NE": {}}))
    app = create_app(config, actions={}, notifier=None, background=False)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    paths = load_spec()["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    missing = {r for r in routes if r not in documented}
    assert not missing, f"routes missing from responder/openapi.yml: {sorted(missing)}"


def test_an_answer_the_document_does_not_describe_fails() -> None:
    class Answer:
        status = 200
        headers = {"Content-Type": "application/json"}

    with pytest.raises(AssertionError, match="'state' is a required property"):
        check_answer("GET", "/api/v1/incidents", {}, {}, Answer(), b'{"incidents": [{"id": "x"}]}')
    Answer.status = 418
    with pytest.raises(AssertionError, match="418"):
        check_answer("GET", "/healthz", {}, {}, Answer(), b"{}")


def test_iso_times_sit_beside_every_epoch_field() -> None:
    body = {
        "opened_at": T0,
        "resolved_at": None,
        "labels": {"fixed_at": "not a time"},
        "timeline": [{"at": T0 + 0.25, "event": "x", "last_at": T0 + 60}],
        "last_success_before": 1_789_999_000,
        "streak": 2,
    }
    out = with_iso_times(body)
    assert out["opened_at_iso"] == "2026-09-21T14:13:20Z"
    assert out["resolved_at_iso"] is None
    assert out["labels"] == {"fixed_at": "not a time"}
    assert out["timeline"][0]["at_iso"] == "2026-09-21T14:13:20.250Z"
    assert out["timeline"][0]["last_at_iso"] == "2026-09-21T14:14:20Z"
    assert out["last_success_before_iso"] == iso_utc(1_789_999_000)
    assert "streak_iso" not in out
    parsed = dt.datetime.fromisoformat(out["opened_at_iso"])
    assert parsed.timestamp() == T0


async def test_openapi_json_is_served_with_the_security_headers(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=make_catalog({"ISO-NE": {}}))
    counting = CountingAction("throttle_api", resource="k8s:cm:rate")
    actions = {
        counting.name: counting,
        "pause_dags": CountingAction("pause_dags"),
        "trigger_backfill": CountingAction("trigger_backfill", reversible=False),
    }
    async with start_responder(config, clock=FakeClock(), actions=actions) as r:
        async with r.session.get(r.url + "/openapi.json") as response:
            assert response.status == 200
            assert await response.json() == load_spec()
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Referrer-Policy"] == "same-origin"
            # Plain HTTP: HSTS would be ignored by browsers (RFC 6797), so it is not sent.
            assert "Strict-Transport-Security" not in response.headers
        async with r.session.get(r.url + "/no/such/page") as response:
            assert response.status == 404
            assert response.headers["X-Frame-Options"] == "DENY"
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        assert incident["opened_at_iso"].endswith("Z")
        assert all("at_iso" in entry for entry in incident["timeline"])
        assert all("at_iso" in record for record in incident["actions"])
        flag = await r.get_json(
            "/runtime-config/v1/features/dry_run",
            headers={"Authorization": f"Bearer {FLAGS_TOKEN}"},
        )
        assert flag["source"] == "config"
