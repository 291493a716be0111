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
  ``metadata`` (an object ``{"event_type": str, "event_payload": object}``, or that
  as a JSON string in a form body) is kept with the message; anything else is
  ``invalid_metadata_format``.
- ``GET``/``POST /api/conversations.history`` (``channel`` ID, ``oldest``, ``latest``,
  ``inclusive``, ``limit``, ``cursor``, ``include_all_metadata``): the channel's
  top-level messages and broadcast replies, newest first, ``has_more`` and
  ``response_metadata.next_cursor``; a message's ``metadata`` only with
  ``include_all_metadata``.  ``conversations.replies`` (``channel``, ``ts``): the
  thread, parent first, then replies oldest first (``thread_not_found``).
  Both answer ``channel_not_found`` for a name (they take IDs only),
  ``missing_scope`` (with ``needed``) when the token lacks the ``*:history`` scope
  (``scopes``), ``invalid_cursor``.  ``conversations.list``: the channels, paged.
- ``POST /api/auth.test``: the same token rules; ``{"ok": true, "url", "team",
  "user", "team_id", "user_id", "bot_id"}`` for the bot token.
- ``POST /services/...`` (the configured webhook path): plain-text ``ok``, or
  ``400 invalid_payload`` / ``400 no_text``, ``403 action_prohibited``,
  ``404 no_service`` for any other path, ``410 channel_is_archived``.

Tests read back what was posted with ``messages``/``thread``/``posts_of`` and script
failures with ``rate_limit_next``, ``fail_next`` and ``http_error_next``;
``hold_posts`` keeps the answers of ``chat.postMessage`` and the webhook (the
message is posted) until ``release_posts``, as a reply lost to a crash.
"""

from __future__ import annotations

import asyncio
import base64
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
    metadata: dict[str, Any] | None = None


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
        self.scopes = {"chat:write", "channels:history", "groups:history", "channels:read"}
        self._hold: asyncio.Event | None = None
        self.held = 0  # answers being held now
        self._last_ts = 0.0
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

    def hold_posts(self) -> None:
        self._hold = asyncio.Event()

    def release_posts(self) -> None:
        if self._hold is not None:
            self._hold.set()
            self._hold = None

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

    def posts_of(self, incident_id: str, note: str) -> list[Message]:
        """Messages whose metadata names this incident and note (``initial:0`` ...)."""
        return [
            m
            for m in self.messages
            if (m.metadata or {}).get("event_payload") == {"incident_id": incident_id, "note": note}
        ]

    # --- server ---------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/api/auth.test", self._auth_test)
        for method in ("conversations.history", "conversations.replies", "conversations.list"):
            app.router.add_route("*", f"/api/{method}", self._read)
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
        # Wall-clock timestamps, as Slack's, strictly increasing.
        self._seq += 1
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _record(self, path: str, status: int, error: str | None = None) -> None:
        self.requests.append(Request(path, status, time.monotonic(), error))

    def _resolve_channel(self, value: str) -> str | None:
        if value in self.channels.values():
            return value
        return self.channels.get(value.removeprefix("#"))

    async def _post_message(self, request: web.Request) -> web.Response:
        path = request.path
        limited = self._rate_limited(path)
        if limited is not None:
            return limited
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

        refused = self._check_token(request, args)
        if refused is not None:
            return refused
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
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except json.JSONDecodeError:
                return self._error(path, "invalid_metadata_format")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            return self._error(path, "invalid_metadata_format")
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
            metadata=metadata,
        )
        self.messages.append(message)
        self._record(path, 200)
        await self._held_answer()
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

    async def _read(self, request: web.Request) -> web.Response:
        """conversations.history / .replies / .list, as Slack documents them."""
        path = request.path
        method = path.rsplit("/", 1)[-1]
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST":
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        limited = self._rate_limited(path)
        if limited is not None:
            return limited
        refused = self._check_token(request, args)
        if refused is not None:
            return refused
        if method == "conversations.list":
            return self._list(path, args)
        needed = "channels:history"
        if needed not in self.scopes:
            self._record(path, 200, "missing_scope")
            return web.json_response(
                {"ok": False, "error": "missing_scope", "needed": needed, "provided": "chat:write"}
            )
        channel = str(args.get("channel", ""))
        if channel not in self.channels.values():
            return self._error(path, "channel_not_found")  # IDs only, never names
        if channel not in self.member_of:
            return self._error(path, "not_in_channel")
        in_channel = [m for m in self.messages if m.channel == channel and m.via == "api"]
        if method == "conversations.replies":
            parent = str(args.get("ts", ""))
            if not any(m.ts == parent for m in in_channel):
                return self._error(path, "thread_not_found")
            found = [m for m in in_channel if parent in (m.ts, m.thread_ts)]
            found.sort(key=lambda m: (m.ts != parent, float(m.ts)))
        else:
            found = [m for m in in_channel if m.thread_ts is None or m.reply_broadcast]
            found.sort(key=lambda m: float(m.ts), reverse=True)
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        oldest = args.get("oldest")
        latest = args.get("latest")
        try:
            if oldest is not None:
                low = float(oldest)
                found = [
                    m for m in found if float(m.ts) > low or (inclusive and float(m.ts) == low)
                ]
            if latest is not None:
                high = float(latest)
                found = [
                    m for m in found if float(m.ts) < high or (inclusive and float(m.ts) == high)
                ]
        except ValueError:
            return self._error(path, "invalid_ts_oldest" if oldest else "invalid_ts_latest")
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        page, more, cursor = self._page(found, args)
        if page is None:
            return self._error(path, "invalid_cursor")
        self._record(path, 200)
        return web.json_response(
            {
                "ok": True,
                "messages": [self._message_json(m, metadata) for m in page],
                "has_more": more,
                "response_metadata": {"next_cursor": cursor},
            }
        )

    def _list(self, path: str, args: dict[str, Any]) -> web.Response:
        if "channels:read" not in self.scopes:
            self._record(path, 200, "missing_scope")
            return web.json_response(
                {"ok": False, "error": "missing_scope", "needed": "channels:read"}
            )
        rows = [
            {"id": cid, "name": name, "is_channel": True} for name, cid in self.channels.items()
        ]
        page, _, cursor = self._page(rows, args)
        if page is None:
            return self._error(path, "invalid_cursor")
        self._record(path, 200)
        return web.json_response(
            {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}
        )

    @staticmethod
    def _page(rows: list[Any], args: dict[str, Any]) -> tuple[list[Any] | None, bool, str]:
        """Cursor paging: the cursor is the offset, base64 as Slack's are opaque."""
        limit = max(1, min(int(args.get("limit") or 100), 999))
        offset = 0
        if args.get("cursor"):
            try:
                offset = int(base64.b64decode(str(args["cursor"])).decode().removeprefix("next:"))
            except ValueError:
                return None, False, ""
        page = rows[offset : offset + limit]
        more = offset + limit < len(rows)
        cursor = base64.b64encode(f"next:{offset + limit}".encode()).decode() if more else ""
        return page, more, cursor

    @staticmethod
    def _message_json(message: Message, metadata: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "subtype": "thread_broadcast" if message.reply_broadcast else "bot_message",
            "text": message.text,
            "ts": message.ts,
            "bot_id": "B0FEEDGRD",
        }
        if message.thread_ts:
            body["thread_ts"] = message.thread_ts
        if metadata and message.metadata is not None:
            body["metadata"] = message.metadata
        return body

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

    async def _held_answer(self) -> None:
        """After posting: while ``hold_posts`` is on, the answer waits (or never comes)."""
        hold = self._hold
        if hold is None:
            return
        self.held += 1
        try:
            await hold.wait()
        finally:
            self.held -= 1

    def _rate_limited(self, path: str) -> web.Response | None:
        """A scripted 429 with ``Retry-After`` (seconds), as the Web API answers it."""
        if not self._rate_limits:
            return None
        retry_after = self._rate_limits.pop(0)
        self._record(path, 429, "ratelimited")
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )

    def _check_token(self, request: web.Request, args: dict[str, Any]) -> web.Response | None:
        """The bearer token (or a ``token`` argument): None when it is the bot's."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or args.get("token")
        if not token:
            return self._error(request.path, "not_authed")
        if token != self.token:
            return self._error(request.path, "invalid_auth")
        return None

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
        await self._held_answer()
        return plain(200, "ok")


@asynccontextmanager
async def running_fake_slack(**kwargs: Any) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
