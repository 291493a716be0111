"""``POST /webhook/alertmanager``: authenticate, validate, record durably, answer.

The answer is 2xx only once every new alert transition is in the store; the
runbook then runs asynchronously (``Engine.kick``).  A refused request
(401, 413, 400, 503) records nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from feedguard.core.log import get_logger

from . import appkeys
from .auth import check_basic, check_bearer
from .payload import Notification, PayloadError, decode_json, parse_notification
from .store import InvalidValue, StoreUnavailable

log = get_logger(__name__)


@dataclass(frozen=True)
class WebhookAuth:
    bearer_token: str | None
    basic_username: str | None
    basic_password: str | None

    @property
    def required(self) -> bool:
        return self.bearer_token is not None or self.basic_username is not None

    def allows(self, header: str | None) -> bool:
        if not self.required:
            return True
        if self.bearer_token is not None and check_bearer(header, self.bearer_token):
            return True
        return self.basic_username is not None and check_basic(
            header, self.basic_username, self.basic_password or ""
        )


WEBHOOK_AUTH = web.AppKey("webhook_auth", WebhookAuth)


def _refuse(status: int, message: str, result: str, request: web.Request) -> web.Response:
    request.app[appkeys.METRICS].notifications.labels(result).inc()
    log.warning("webhook refused", status=status, reason=message, peer=request.remote)
    headers = {"WWW-Authenticate": 'Bearer realm="feedguard"'} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers)


async def alertmanager_webhook(request: web.Request) -> web.Response:
    started = time.perf_counter()
    try:
        return await _handle(request)
    finally:
        request.app[appkeys.METRICS].webhook_duration.observe(time.perf_counter() - started)


async def _handle(request: web.Request) -> web.Response:
    app = request.app
    config = app[appkeys.CONFIG]
    if not app[WEBHOOK_AUTH].allows(request.headers.get("Authorization")):
        return _refuse(401, "missing or wrong credentials", "unauthorized", request)
    limit = config.webhook.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refuse(413, f"body larger than {limit} bytes", "too_large", request)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _refuse(413, f"body larger than {limit} bytes", "too_large", request)
    if len(body) > limit:
        return _refuse(413, f"body larger than {limit} bytes", "too_large", request)
    try:
        data = decode_json(body)
    except PayloadError as exc:
        return _refuse(400, str(exc), "invalid", request)
    try:
        notification = parse_notification(data)
    except PayloadError as exc:
        return _refuse(400, f"invalid payload: {exc}", "invalid", request)

    tokens = structlog.contextvars.bind_contextvars(
        group_key=notification.group_key, receiver=notification.receiver
    )
    try:
        return await _record(request, notification)
    finally:
        # A keep-alive connection serves its next request in the same task.
        structlog.contextvars.reset_contextvars(**tokens)


async def _record(request: web.Request, notification: Notification) -> web.Response:
    app = request.app
    if notification.truncated_alerts:
        log.warning("alertmanager truncated the group", truncated=notification.truncated_alerts)
    received_at = app[appkeys.CLOCK]()
    items: dict[str, dict[str, Any]] = {}
    for alert in notification.alerts:
        items.setdefault(
            alert.transition_key,
            {
                "key": alert.transition_key,
                "alert": alert.to_json(),
                "group_key": notification.group_key,
                "receiver": notification.receiver,
                "received_at": received_at,
                "truncated": notification.truncated_alerts,
            },
        )
    try:
        fresh = await app[appkeys.STORE].record_transitions(list(items.items()))
    except StoreUnavailable as exc:
        log.error("store unavailable: notification not recorded", error=str(exc))
        return _refuse(503, "state store unavailable, retry later", "unavailable", request)
    except InvalidValue as exc:  # decode_json lets none through; kept as a second line
        return _refuse(400, f"invalid payload: {exc}", "invalid", request)
    new = sum(fresh)
    duplicates = len(notification.alerts) - new
    metrics = app[appkeys.METRICS]
    metrics.notifications.labels("accepted").inc()
    if duplicates:
        metrics.duplicates.inc(duplicates)
    if new:
        app[appkeys.ENGINE].kick()
    log.info(
        "notification recorded",
        status=notification.status,
        alerts=len(notification.alerts),
        new=new,
        duplicates=duplicates,
    )
    return web.json_response({"status": "accepted", "new": new, "duplicates": duplicates})
