"""A local Slack for tests: ``chat.postMessage`` and an incoming webhook, on loopback.

It follows Slack's documented behaviour rather than our client's:

- ``POST /api/chat.postMessage``: the token from ``Authorization: Bearer`` (or a
  ``token`` form field); JSON or form-encoded bodies.  Errors are HTTP 200 with
  ``{"ok": false, "error": ...}``: ``not_authed``, ``invalid_auth``,
  ``channel_not_found``, ``not_in_channel``, ``no_text``, ``invalid_json``.
  Stricter than Slack documents for this method: a ``thread_ts`` that is not a
  message of that channel is refused with ``thread_not_found`` (the error
  ``conversations.replies`` uses), so a reply sent to the wrong place fails.
  Success is ``{"ok": true, "channel": ID, "ts": TS, "message": {...}}``.
  Rate limiting is HTTP 429 with a ``Retry-After`` header (seconds).
- ``POST /api/auth.test``: the same token rules; ``{"ok": true, "url", "team",
  "user", "team_id", "user_id", "bot_id"}`` for the bot token.
- ``POST /services/...`` (the configured webhook path): plain-text ``ok``, or
  ``400 invalid_payload`` / ``400 no_text``, ``403 action_prohibited``,
  ``404 no_service`` for any other path, ``410 channel_is_archived``.

Tests read back what was posted with ``messages``/``thread`` and script
failures with ``rate_limit_next``, ``fail_next`` and ``http_error_next``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .services import free_port

WEBHOOK_PATH = "/services/T0FEEDGRD/B0NOTES/fake-webhook-secret"


@dataclass
class Message:
    channel: str  # channel ID
    ts: str
    text: str
    thread_ts: str | None = None
    reply_broadcast: bool = False
    via: str = "api"  # "api" or "webhook"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Request:
    path: str
    status: int
    at: float  # time.monotonic()
    error: str | None = None


class FakeSlack:
    def __init__(
        self,
        token: str = "xoxb-test-token",
        channels: dict[str, str] | None = None,
        member_of: set[str] | None = None,
    ) -> None:
        self.token = token
        # name -> ID; the bot is a member of ``member_of`` (default: all).
        self.channels = channels or {"data-platform": "C0DATAPLAT", "general": "C0GENERAL"}
        self.member_of = member_of if member_of is not None else set(self.channels.values())
        self.messages: list[Message] = []
        self.requests: list[Request] = []
        self.webhook_channel = self.channels.get("data-platform", "C0WEBHOOK")
        self.webhook_prohibited = False
        self.webhook_archived = False
        self._rate_limits: list[int] = []  # Retry-After of the next 429s
        self._errors: list[str] = []
        self._http_errors: list[int] = []
        self._clock = 1_700_000_000
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- scripting ------------------------------------------------------------

    def rate_limit_next(self, count: int = 1, retry_after: int = 1) -> None:
        self._rate_limits.extend([retry_after] * count)

    def fail_next(self, error: str, count: int = 1) -> None:
        self._errors.extend([error] * count)

    def http_error_next(self, status: int, count: int = 1) -> None:
        self._http_errors.extend([status] * count)

    # --- reading back ---------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def thread(self, ts: str) -> list[Message]:
        """The parent message and its replies, oldest first (as conversations.replies)."""
        return [m for m in self.messages if m.ts == ts or m.thread_ts == ts]

    def top_level(self) -> list[Message]:
        return [m for m in self.messages if m.thread_ts is None]

    # --- server ---------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/api/auth.test", self._auth_test)
        app.router.add_post("/services/{rest:.*}", self._webhook)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        self.port = free_port()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _next_ts(self) -> str:
        self._seq += 1
        return f"{self._clock + self._seq}.{self._seq:06d}"

    def _record(self, path: str, status: int, error: str | None = None) -> None:
        self.requests.append(Request(path, status, time.monotonic(), error))

    def _resolve_channel(self, value: str) -> str | None:
        if value in self.channels.values():
            return value
        return self.channels.get(value.removeprefix("#"))

    async def _post_message(self, request: web.Request) -> web.Response:
        path = request.path
        if self._rate_limits:
            retry_after = self._rate_limits.pop(0)
            self._record(path, 429, "ratelimited")
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        if self._http_errors:
            status = self._http_errors.pop(0)
            self._record(path, status)
            return web.Response(status=status, text="upstream error", content_type="text/html")

        args: dict[str, Any]
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return self._error(path, "invalid_json")
            args = body if isinstance(body, dict) else {}
        else:
            args = dict(await request.post())

        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or args.get("token")
        if not token:
            return self._error(path, "not_authed")
        if token != self.token:
            return self._error(path, "invalid_auth")
        if self._errors:
            return self._error(path, self._errors.pop(0))

        channel = self._resolve_channel(str(args.get("channel", "")))
        if channel is None:
            return self._error(path, "channel_not_found")
        if channel not in self.member_of:
            return self._error(path, "not_in_channel")
        text = args.get("text")
        if not text and not args.get("blocks") and not args.get("attachments"):
            return self._error(path, "no_text")
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and not any(
            m.ts == thread_ts and m.channel == channel for m in self.messages
        ):
            return self._error(path, "thread_not_found")

        ts = self._next_ts()
        message = Message(
            channel=channel,
            ts=ts,
            text=str(text or ""),
            thread_ts=str(thread_ts) if thread_ts else None,
            reply_broadcast=args.get("reply_broadcast") in (True, "true", "1"),
            args={k: v for k, v in args.items() if k != "token"},
        )
        self.messages.append(message)
        self._record(path, 200)
        answer: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": message.text,
            "ts": ts,
            "bot_id": "B0FEEDGRD",
        }
        if message.thread_ts:
            answer["thread_ts"] = message.thread_ts
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": answer})

    async def _auth_test(self, request: web.Request) -> web.Response:
        """Slack's auth.test: who the token is, or not_authed / invalid_auth."""
        path = request.path
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        if not token:
            form = await request.post() if request.content_type != "application/json" else {}
            token = str(form.get("token") or "") or None
        if not token:
            return self._error(path, "not_authed")
        if token != self.token:
            return self._error(path, "invalid_auth")
        self._record(path, 200)
        return web.json_response(
            {
                "ok": True,
                "url": "https://feedguard-test.slack.com/",
                "team": "Feedguard Test",
                "user": "feedguard",
                "team_id": "T0FEEDGRD",
                "user_id": "U0FEEDGRD",
                "bot_id": "B0FEEDGRD",
            }
        )

    def _error(self, path: str, error: str) -> web.Response:
        self._record(path, 200, error)
        return web.json_response({"ok": False, "error": error})

    async def _webhook(self, request: web.Request) -> web.Response:
        path = request.path

        def plain(status: int, text: str) -> web.Response:
            self._record(path, status, None if status == 200 else text)
            return web.Response(status=status, text=text, content_type="text/html")

        if path != WEBHOOK_PATH:
            return plain(404, "no_service")
        if self._rate_limits:
            retry_after = self._rate_limits.pop(0)
            self._record(path, 429, "rate_limited")
            return web.Response(
                status=429, text="rate_limited", headers={"Retry-After": str(retry_after)}
            )
        if self.webhook_prohibited:
            return plain(403, "action_prohibited")
        if self.webhook_archived:
            return plain(410, "channel_is_archived")
        try:
            body = json.loads(await request.text())
        except json.JSONDecodeError:
            return plain(400, "invalid_payload")
        if not isinstance(body, dict):
            return plain(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return plain(400, "no_text")
        self.messages.append(
            Message(
                channel=self.webhook_channel,
                ts=self._next_ts(),
                text=str(body.get("text", "")),
                via="webhook",
                args=body,
            )
        )
        return plain(200, "ok")


@asynccontextmanager
async def running_fake_slack(**kwargs: Any) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
