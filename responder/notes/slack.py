"""Delivery of a rendered note to Slack, through slack_sdk.

Two ways, as Slack offers them:

- Web API ``chat.postMessage`` with a bot token (scope ``chat:write``): the
  answer carries the channel ID and the message ``ts``, so later notes go into
  the initial note's thread (``thread_ts``).
- An incoming webhook: a JSON ``{"text": ...}`` POST answered with a plain
  ``ok`` (or ``400 invalid_payload``/``no_text``, ``403 action_prohibited``,
  ``404 no_service``...); no ``ts`` comes back, so there are no threads.

A note carries message ``metadata`` (``event_type`` ``feedguard_note``, the incident
and the slot in ``event_payload``), so after a replica died mid-post another one can
look for it with ``conversations.history`` / ``conversations.replies``
(``include_all_metadata``; bot scopes ``channels:history`` or ``groups:history``, and
``channels:read`` / ``groups:read`` when ``notes.channel`` is a name rather than an
ID) before posting it again.  An incoming webhook cannot read the channel: there,
``find`` raises ``CannotConfirm``.

slack_sdk brings the documented error model (``SlackApiError`` with Slack's
``error`` code) and pluggable retry handlers; ours honour ``Retry-After`` on
429 up to a bound, and retry 500/503 and dropped connections a bounded number
of times.  Every failure ends as a ``NoteDeliveryError`` whose message never
contains the token or the webhook URL.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from feedguard.core.retry_after import retry_after_of

from ..plugins import CannotConfirm, NoteProgress
from .settings import NotesSettings

# Slack's conversation IDs: public (C), private (G) channels, DMs (D).
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# The note being delivered in this task: its 429 waits are reported to the core.
current_progress: contextvars.ContextVar[NoteProgress | None] = contextvars.ContextVar(
    "note_progress", default=None
)
# How far ``find`` reads back, at most (pages of Slack's maximum size).
FIND_PAGES = 10
FIND_PAGE_SIZE = 200


class NoteDeliveryError(Exception):
    """Slack did not take the note; ``code`` is Slack's error string when it gave one."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Delivered:
    channel: str | None  # the channel ID Slack answered with (Web API only)
    ts: str | None  # the message's timestamp, the thread key (Web API only)


Metadata = Mapping[str, Any]  # Slack's {"event_type": ..., "event_payload": {...}}


class Delivery(Protocol):
    threads: bool

    async def send(
        self,
        text: str,
        *,
        channel: str,
        thread_ts: str | None,
        broadcast: bool,
        metadata: Metadata,
    ) -> Delivered: ...

    async def find(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        oldest: float,
        match: Callable[[Metadata], bool],
    ) -> Delivered | None:
        """The newest message since ``oldest`` (in the thread when ``thread_ts``) whose
        metadata ``match`` accepts; None when there is none."""
        ...


def retry_after_seconds(response: HttpResponse) -> float | None:
    return retry_after_of(response.status_code, response.headers)


class BoundedRateLimitHandler(AsyncRetryHandler):
    """Retry a 429 after exactly ``Retry-After`` seconds, unless that is longer than allowed.

    slack_sdk's own handler waits whatever the header says (plus jitter); a note
    must not sit for an hour behind a rate limit, so a longer wait fails it and
    the core records the failure on the incident.
    """

    def __init__(self, max_retry_count: int, max_wait_seconds: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_seconds = max_wait_seconds

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response)
        return wait is None or wait <= self.max_wait_seconds

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = retry_after_seconds(response) if response is not None else None
        state.next_attempt_requested = True
        progress = current_progress.get()
        if progress is not None:
            await progress.waiting()  # refused: a crash from here on left nothing posted
        # No header (Slack always sends one): one second, the documented posting rate.
        await asyncio.sleep(1.0 if wait is None else wait)
        if progress is not None:
            await progress.sending()
        state.increment_current_attempt()


def retry_handlers(settings: NotesSettings) -> list[AsyncRetryHandler]:
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
    count = settings.max_retries
    return [
        BoundedRateLimitHandler(count, settings.max_retry_after_seconds),
        AsyncServerErrorRetryHandler(max_retry_count=count, interval_calculator=backoff),
        AsyncConnectionErrorRetryHandler(max_retry_count=count, interval_calculator=backoff),
    ]


class WebApiDelivery:
    """``chat.postMessage`` with a bot token; threads through ``thread_ts``."""

    threads = True

    def __init__(self, token: str, settings: NotesSettings, session: aiohttp.ClientSession) -> None:
        self.client = AsyncWebClient(
            token=token,
            base_url=settings.base_url,
            timeout=max(1, round(settings.request_timeout_seconds)),
            session=session,
            retry_handlers=retry_handlers(settings),
        )
        self._channel_ids: dict[str, str] = {}  # configured name -> ID

    async def check(self) -> None:
        """The start-up check: ``auth.test`` (the token is valid) over the shared session."""
        try:
            await self.client.auth_test()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error("auth.test", exc) from None

    async def send(
        self,
        text: str,
        *,
        channel: str,
        thread_ts: str | None,
        broadcast: bool,
        metadata: Metadata,
    ) -> Delivered:
        args: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "metadata": dict(metadata),
            # Notes are text we wrote: no auto-linking of names, no link previews.
            "parse": "none",
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            args["thread_ts"] = thread_ts
            if broadcast:
                args["reply_broadcast"] = True
        try:
            response = await self.client.chat_postMessage(**args)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error("chat.postMessage", exc) from None
        ts = response.get("ts")
        answered_channel = response.get("channel")
        return Delivered(
            channel=str(answered_channel) if answered_channel else channel,
            ts=str(ts) if ts else None,
        )

    async def find(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        oldest: float,
        match: Callable[[Metadata], bool],
    ) -> Delivered | None:
        channel_id = await self._channel_id(channel)
        args: dict[str, Any] = {
            "channel": channel_id,
            "oldest": f"{oldest:.6f}",
            "include_all_metadata": True,
            "limit": FIND_PAGE_SIZE,
        }
        method = "conversations.history"
        if thread_ts:
            method = "conversations.replies"
            args["ts"] = thread_ts
        found: Delivered | None = None
        try:
            for _ in range(FIND_PAGES):
                if thread_ts:
                    page = await self.client.conversations_replies(**args)
                else:
                    page = await self.client.conversations_history(**args)
                for message in page.get("messages") or ():
                    metadata = message.get("metadata")
                    if isinstance(metadata, dict) and match(metadata):
                        ts = str(message.get("ts"))
                        if found is None or float(ts) > float(found.ts or 0):
                            found = Delivered(channel=channel_id, ts=ts)
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    break
                args["cursor"] = cursor
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error(method, exc) from None
        return found

    async def _channel_id(self, channel: str) -> str:
        """History is read by channel ID; a configured name is looked up once."""
        if _CHANNEL_ID.match(channel):
            return channel
        if self._channel_ids.get(channel):
            return self._channel_ids[channel]
        name = channel.removeprefix("#")
        args: dict[str, Any] = {
            "types": "public_channel,private_channel",
            "exclude_archived": True,
            "limit": FIND_PAGE_SIZE,
        }
        try:
            while True:
                page = await self.client.conversations_list(**args)
                for found in page.get("channels") or ():
                    if found.get("name") == name:
                        self._channel_ids[channel] = str(found["id"])
                        return self._channel_ids[channel]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
                args["cursor"] = cursor
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error("conversations.list", exc) from None
        raise NoteDeliveryError(f"Slack conversations.list: no channel named {channel!r}")


def delivery_error(method: str, exc: Exception) -> NoteDeliveryError:
    """A NoteDeliveryError naming Slack's error code (never the token)."""
    if isinstance(exc, SlackApiError):
        # An AsyncSlackResponse, or the raw aiohttp response when the body was not JSON.
        data = getattr(exc.response, "data", None)
        code = data.get("error") if isinstance(data, dict) else None
        status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", None)
        detail = code or f"HTTP {status}"
        return NoteDeliveryError(f"Slack {method} failed: {detail}", code=code, status=status)
    return NoteDeliveryError(f"Slack {method} failed: {type(exc).__name__}: {exc}")


class WebhookDelivery:
    """An incoming webhook: posts to the channel the webhook was made for, no threads."""

    threads = False

    def __init__(self, url: str, settings: NotesSettings, session: aiohttp.ClientSession) -> None:
        self.client = AsyncWebhookClient(
            url=url,
            timeout=max(1, round(settings.request_timeout_seconds)),
            session=session,
            retry_handlers=retry_handlers(settings),
        )

    async def send(
        self,
        text: str,
        *,
        channel: str,
        thread_ts: str | None,
        broadcast: bool,
        metadata: Metadata,
    ) -> Delivered:
        # No metadata: an incoming webhook posts text and blocks, and nothing can read
        # the message back through it anyway.
        try:
            response = await self.client.send(text=text, unfurl_links=False, unfurl_media=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # aiohttp names host:port only, never the URL's secret path.
            raise NoteDeliveryError(
                f"Slack incoming webhook failed: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code != 200:
            body = (response.body or "").strip()[:100]
            raise NoteDeliveryError(
                f"Slack incoming webhook failed: HTTP {response.status_code} {body}".rstrip(),
                code=body or None,
                status=response.status_code,
            )
        return Delivered(channel=None, ts=None)

    async def find(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        oldest: float,
        match: Callable[[Metadata], bool],
    ) -> Delivered | None:
        raise CannotConfirm("an incoming webhook cannot read the channel back")
