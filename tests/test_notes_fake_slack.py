"""The local Slack answers as Slack documents it (so the notifier tests mean something)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from .support.fake_slack import FakeSlack, running_fake_slack

TOKEN = "xoxb-fake"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


async def call(slack: FakeSlack, **kwargs: object) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{slack.api_url}chat.postMessage", **kwargs) as response,  # type: ignore[arg-type]
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def test_post_message_with_bearer_json_and_thread(slack: FakeSlack) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, body = await call(slack, headers=auth, json={"channel": "#data-platform", "text": "a"})
    assert status == 200
    assert isinstance(body, dict)
    assert body["ok"] is True
    assert body["channel"] == "C0DATAPLAT"
    root = body["ts"]
    assert body["message"]["ts"] == root
    _, reply = await call(
        slack, headers=auth, json={"channel": "C0DATAPLAT", "text": "b", "thread_ts": root}
    )
    assert isinstance(reply, dict)
    assert reply["message"]["thread_ts"] == root
    assert [m.text for m in slack.thread(root)] == ["a", "b"]


async def test_post_message_form_body_with_token_field(slack: FakeSlack) -> None:
    status, body = await call(
        slack, data={"token": TOKEN, "channel": "data-platform", "text": "form"}
    )
    assert (status, isinstance(body, dict) and body["ok"]) == (200, True)
    assert "token" not in slack.messages[0].args


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"json": {"channel": "#data-platform", "text": "x"}}, "not_authed"),
        (
            {"headers": {"Authorization": "Bearer xoxb-other"}, "json": {"channel": "x"}},
            "invalid_auth",
        ),
        (
            {"headers": {"Authorization": f"Bearer {TOKEN}"}, "json": {"channel": "#nope"}},
            "channel_not_found",
        ),
        (
            {"headers": {"Authorization": f"Bearer {TOKEN}"}, "json": {"channel": "#general"}},
            "no_text",
        ),
    ],
)
async def test_post_message_errors_are_200_with_ok_false(
    slack: FakeSlack, kwargs: dict[str, object], error: str
) -> None:
    status, body = await call(slack, **kwargs)
    assert (status, body) == (200, {"ok": False, "error": error})
    assert slack.messages == []


async def test_rate_limit_is_429_with_retry_after(slack: FakeSlack) -> None:
    slack.rate_limit_next(1, retry_after=7)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{slack.api_url}chat.postMessage",
            headers={"Authorization": f"Bearer {TOKEN}"},
            json={"channel": "#data-platform", "text": "x"},
        ) as response,
    ):
        assert response.status == 429
        assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        (None, b'{"text": "hi"}', 200, "ok"),
        (None, b"{not json", 400, "invalid_payload"),
        (None, b'{"username": "x"}', 400, "no_text"),
        ("/services/T0/B0/other", b'{"text": "hi"}', 404, "no_service"),
    ],
)
async def test_incoming_webhook_answers_plain_text(
    slack: FakeSlack, path: str | None, body: bytes, status: int, text: str
) -> None:
    url = slack.webhook_url if path is None else f"{slack.url}{path}"
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
        assert (response.status, await response.text()) == (status, text)
    assert len(slack.messages) == (1 if status == 200 else 0)
