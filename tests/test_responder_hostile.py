"""Hostile and pathological requests: always a 4xx, never a 5xx, never harming others.

Each case runs against both stores (SQLite and a real redis-server).  After a
refused request the store still works: a valid notification is accepted and
acted on, /readyz is ok, and nothing the refused request carried was recorded.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feedguard.responder.store import InvalidValue, open_store

from .conftest import make_catalog
from .support.raw_http import RawConnection
from .support.responder import (
    BEARER,
    FLAGS_TOKEN,
    CountingAction,
    Responder,
    alert,
    counting_actions,
    notification,
    responder_config,
    start_responder,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})
AUTH = [(b"Authorization", b"Bearer " + BEARER.encode())]
JSON_TYPE = [(b"Content-Type", b"application/json")]


def counting() -> dict[str, CountingAction]:
    return counting_actions()


@pytest.fixture(params=["sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def hostile(
    tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Responder, dict[str, CountingAction]]]:
    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    config = responder_config(tmp_path, catalog=CATALOG, store=store_kind, redis_url=redis_url)
    acts = counting()
    async with start_responder(config, actions=acts) as r:
        yield r, acts


def raw_body(alerts_json: str) -> bytes:
    """A notification whose alerts array is the given JSON text, verbatim."""
    base = notification([alert("ISO-NE")])
    text = json.dumps({**base, "alerts": "__ALERTS__"})
    return text.replace('"__ALERTS__"', alerts_json).encode()


def _alert_with(field: str, raw_value: str) -> str:
    text = json.dumps({**alert("ISO-NE"), field: "__V__"})
    return "[" + text.replace('"__V__"', raw_value) + "]"


HOSTILE_BODIES: dict[str, bytes] = {
    "nested-1000": raw_body("[" * 1000 + "]" * 1000),
    "nested-100000": raw_body("[" * 100_000 + "]" * 100_000),
    "nested-objects": raw_body('{"a":' * 2000 + "1" + "}" * 2000),
    "integer-5000-digits": raw_body(_alert_with("fingerprint", "1" * 5000)),
    "integer-truncated": b'{"version": "4", "truncatedAlerts": ' + b"9" * 5000 + b"}",
    "lone-surrogate-fingerprint": raw_body(_alert_with("fingerprint", '"\\ud800"')),
    "lone-low-surrogate-label": raw_body(
        json.dumps([{**alert("ISO-NE"), "labels": {"provider": "__S__"}}]).replace(
            "__S__", "\\udc80"
        )
    ),
    "surrogate-group-key": json.dumps(notification([alert("ISO-NE")]))
    .replace('"groupKey": "{}:{}"', '"groupKey": "\\udbff"')
    .encode(),
    "raw-surrogate-bytes": raw_body(_alert_with("fingerprint", '"__RAW__"')).replace(
        b"__RAW__", b"\xed\xa0\x80"
    ),
    "invalid-utf8": b'{"version": "4", "groupKey": "\xff\xfe"}',
    "nan": raw_body(_alert_with("fingerprint", "NaN")),
    "infinity-float": b'{"version": "4", "truncatedAlerts": 1e999}',
    "unicode-digits-timestamp": raw_body(
        _alert_with("startsAt", json.dumps("\u0662\u0660\u0662\u0666-01-01T00:00:00Z"))
    ),
    "offset-24h": raw_body(_alert_with("startsAt", '"2026-01-01T00:00:00+24:00"')),
    "year-9999-west": raw_body(_alert_with("startsAt", '"9999-12-31T23:59:59-23:59"')),
    "year-1-east": raw_body(_alert_with("startsAt", '"0001-01-01T00:00:01+23:59"')),
    "empty": b"",
    "bom": b"\xef\xbb\xbf" + json.dumps(notification([alert("ISO-NE")])).encode(),
}


async def assert_healthy(r: Responder, acts: dict[str, CountingAction]) -> None:
    """Nothing was acted on for the refused request; a valid one is accepted and acted on."""
    await r.settle()
    assert all(not a.applied for a in acts.values())
    response = await r.post(notification([alert("ISO-NE")]))
    assert response.status == 200, await response.text()
    await r.settle()
    assert len(acts["throttle_api"].applied) == 1
    async with r.session.get(r.url + "/readyz") as ready:
        assert ready.status == 200


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
async def test_hostile_body_is_refused_with_400(
    hostile: tuple[Responder, dict[str, CountingAction]], case: str
) -> None:
    r, acts = hostile
    conn = RawConnection("127.0.0.1", r.server.port or 0)
    try:
        answer = await conn.request("POST", "/webhook/alertmanager", HOSTILE_BODIES[case], AUTH)
    finally:
        await conn.close()
    assert answer.status == 400, answer.body
    assert json.loads(answer.body)["error"]
    await assert_healthy(r, acts)


NON_UTF8_AUTH = [
    b"Bearer \xff\xfe",
    b"Bearer " + BEARER.encode() + b"\xc0",
    b"\xff",
    b"Basic \xe9t\xe9",
    b"Basic " + base64.b64encode(b"am:\xff\xfe"),
]


@pytest.mark.parametrize("header", NON_UTF8_AUTH)
async def test_non_utf8_authorization_is_401(
    hostile: tuple[Responder, dict[str, CountingAction]], header: bytes
) -> None:
    r, acts = hostile
    conn = RawConnection("127.0.0.1", r.server.port or 0)
    body = json.dumps(notification([alert("ISO-NE")])).encode()
    flag = b'{"enabled": false}'
    try:
        hook = await conn.request(
            "POST", "/webhook/alertmanager", body, [(b"Authorization", header)]
        )
        get_flag = await conn.request(
            "GET", "/runtime-config/v1/features/dry_run", b"", [(b"Authorization", header)]
        )
        set_flag = await conn.request(
            "POST", "/runtime-config/v1/features/dry_run", flag, [(b"Authorization", header)]
        )
    finally:
        await conn.close()
    # aiohttp's parser may refuse such a header itself (400); it must never be a 5xx.
    assert hook.status in (400, 401), hook.body
    assert get_flag.status in (400, 401)
    assert set_flag.status in (400, 401)
    await assert_healthy(r, acts)


FLAG_BODIES = [
    b'{"enabled": false, "configuration": ' + b'{"a":' * 900 + b"1" + b"}" * 900 + b"}",
    b'{"enabled": false, "configuration": {"x": [[[[1]]]]}}',
    b'{"enabled": false, "configuration": {"x": "\\ud800"}}',
    b'{"enabled": ' + b"1" * 5000 + b"}",
    b"\xff",
]


@pytest.mark.parametrize("body", FLAG_BODIES, ids=range(len(FLAG_BODIES)))
async def test_hostile_flag_body_is_400(
    hostile: tuple[Responder, dict[str, CountingAction]], body: bytes
) -> None:
    r, acts = hostile
    auth = [(b"Authorization", b"Bearer " + FLAGS_TOKEN.encode())]
    conn = RawConnection("127.0.0.1", r.server.port or 0)
    try:
        answer = await conn.request("POST", "/runtime-config/v1/features/dry_run", body, auth)
        after = await conn.request("GET", "/runtime-config/v1/features/dry_run", b"", auth)
    finally:
        await conn.close()
    assert answer.status == 400, answer.body
    assert json.loads(after.body)["source"] == "config"  # nothing stored
    await assert_healthy(r, acts)


@pytest.mark.parametrize("path", ["/api/v1/incidents/%ED%A0%80", "/api/v1/incidents/\udc80"])
async def test_surrogate_incident_id_is_404(
    hostile: tuple[Responder, dict[str, CountingAction]], path: str
) -> None:
    r, acts = hostile
    conn = RawConnection("127.0.0.1", r.server.port or 0)
    raw_path = path.encode("utf-8", "surrogateescape").decode("latin-1")
    flags = [(b"Authorization", b"Bearer " + FLAGS_TOKEN.encode())]
    try:
        got = await conn.request("GET", raw_path)
        retried = await conn.request("POST", raw_path + "/retry", b"", flags)
    finally:
        await conn.close()
    assert got.status in (400, 404)
    assert retried.status in (400, 404)
    await assert_healthy(r, acts)


async def test_a_bad_value_fails_only_its_own_caller(
    tmp_path: Path, store_kind: str, request: pytest.FixtureRequest
) -> None:
    """Inside one group commit (Redis) or one connection (SQLite), a value the store
    cannot hold fails its own caller; the valid ones written with it succeed."""
    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    config = responder_config(tmp_path, catalog=CATALOG, store=store_kind, redis_url=redis_url)
    store = open_store(config)
    await store.open()
    try:
        good: list[tuple[str, dict[str, Any]]] = [(f"good-{n}", {"n": n}) for n in range(5)]
        results = await asyncio.gather(
            store.record_transitions(good[:2]),
            store.record_transitions([("bad-\ud800", {"n": -1})]),
            store.record_transitions([("ok", {"text": "\ud800"})]),
            store.record_transitions(good[2:]),
            return_exceptions=True,
        )
        assert results[0] == [True, True]
        assert results[3] == [True, True, True]
        assert isinstance(results[1], InvalidValue)
        # A lone surrogate in a payload (not a key) is either refused or kept escaped.
        assert results[2] == [True] or isinstance(results[2], InvalidValue)
        # The connection is usable (SQLite: no transaction left open).
        assert await store.record_transitions([("after", {"n": 9})]) == [True]
        entries = await store.inbox_peek(100)
        assert [e.get("n") for e in entries if "n" in e] == [0, 1, 2, 3, 4, 9]
    finally:
        await store.close()
