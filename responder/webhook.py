"""``POST /webhook/alertmanager``: authenticate, validate, record durably, answer.

The answer is 2xx only once every new alert transition is in the store; the
runbook then runs asynchronously (``Engine.kick``).  A refused request
(401, 408, 413, 400, 503) records nothing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import web
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind

from feedguard.core.auth import check_basic, check_bearer
from feedguard.core.intake import (
    Refused,
    read_json,
    refusal_response,
    send_refusal,
    unauthorized,
)
from feedguard.core.log import get_logger
from feedguard.core.tracing import carrier

from . import appkeys
from .payload import Notification, PayloadError, parse_notification
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


def _refuse(refused: Refused, request: web.Request) -> web.Response:
    request.app[appkeys.METRICS].notifications.labels(refused.result).inc()
    log.warning(
        "webhook refused", status=refused.status, reason=refused.message, peer=request.remote
    )
    return refusal_response(refused)


async def alertmanager_webhook(request: web.Request) -> web.Response:
    started = time.perf_counter()
    # The notification's trace starts here (an incoming traceparent is not followed:
    # the sampling decision stays ours); the inbox entries carry it on (intake.py).
    attributes = {"http.request.method": "POST", "http.route": "/webhook/alertmanager"}
    with request.app[appkeys.TRACING].span(
        "POST /webhook/alertmanager", kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        try:
            response = await _handle(request, span)
            span.set_attribute("http.response.status_code", response.status)
            return response
        finally:
            request.app[appkeys.METRICS].webhook_duration.observe(time.perf_counter() - started)


async def _handle(request: web.Request, span: trace_api.Span) -> web.Response:
    app = request.app
    config = app[appkeys.CONFIG]
    try:
        if not app[WEBHOOK_AUTH].allows(request.headers.get("Authorization")):
            raise unauthorized()
        hook = config.webhook
        data = await read_json(request, hook.max_body_bytes, hook.body_timeout_seconds)
        try:
            notification = parse_notification(data)
        except PayloadError as exc:
            raise Refused(400, f"invalid payload: {exc}", "invalid") from None
    except Refused as refused:
        return await send_refusal(request, _refuse(refused, request))

    tokens = structlog.contextvars.bind_contextvars(
        group_key=notification.group_key, receiver=notification.receiver
    )
    try:
        return await _record(request, notification, span)
    finally:
        # A keep-alive connection serves its next request in the same task.
        structlog.contextvars.reset_contextvars(**tokens)


async def _backlog_refusal(request: web.Request) -> Refused | None:
    """A 503 while the inbox is over its depth or age limit; None to go on.  (Not asked
    for a notification with an urgent transition: one per provider every few seconds.)"""
    limits = request.app[appkeys.CONFIG].inbox
    backlog = await request.app[appkeys.INBOX].current()
    if backlog.depth < limits.max_depth and backlog.oldest_age_seconds <= limits.max_age_seconds:
        return None
    message = (
        f"inbox backlog: {backlog.depth} transitions waiting, the oldest for "
        f"{backlog.oldest_age_seconds:.0f} s; retry later"
    )
    return Refused(503, message, "backlog")


async def _record(
    request: web.Request, notification: Notification, span: trace_api.Span
) -> web.Response:
    app = request.app
    if notification.truncated_alerts:
        log.warning("alertmanager truncated the group", truncated=notification.truncated_alerts)
    received_at = app[appkeys.CLOCK]()
    # The notification's span context (none when tracing is off, so not even asked):
    # applying the entry and the steps it causes join this trace (intake.py, runner.py).
    trace = carrier() if app[appkeys.TRACING].enabled else None
    # The notification's fields, built once: a group can hold thousands of alerts.
    shared: dict[str, Any] = {
        "group_key": notification.group_key,
        "receiver": notification.receiver,
        "received_at": received_at,
        "truncated": notification.truncated_alerts,
        "group_labels": dict(notification.group_labels),
    }
    if trace:
        shared["trace"] = trace
    items: dict[str, dict[str, Any]] = {}
    for alert in notification.alerts:
        key = alert.transition_key
        if key not in items:
            items[key] = {"key": key, "alert": alert.to_json(), **shared}
    urgent = app[appkeys.URGENT].pick((key, item["alert"]) for key, item in items.items())
    transitions = len(items)
    if notification.truncated_alerts and notification.alerts:
        # Alertmanager may first show the group whole, then the same alerts with others
        # left out: nothing new to record, yet the incident must learn its picture is
        # incomplete.  One entry per (group, count, visible alerts); never urgent.
        key, marker = truncation_marker(notification, items, shared)
        items.setdefault(key, marker)
    try:
        # A transition that may open an incident is not held back by a storm's backlog.
        backlog = None if urgent else await _backlog_refusal(request)
        if backlog is not None:
            return _refuse(backlog, request)
        fresh = await app[appkeys.STORE].record_transitions(list(items.items()), urgent)
    except StoreUnavailable as exc:
        log.error("store unavailable: notification not recorded", error=str(exc))
        refused = Refused(503, "state store unavailable, retry later", "unavailable")
        return _refuse(refused, request)
    except InvalidValue as exc:  # decode_json lets none through; kept as a second line
        return _refuse(Refused(400, f"invalid payload: {exc}", "invalid"), request)
    new = sum(fresh[:transitions])  # the alerts' transitions (not a truncation marker)
    duplicates = len(notification.alerts) - new
    span.set_attribute("feedguard.alerts", len(notification.alerts))
    span.set_attribute("feedguard.alerts.new", new)
    metrics = app[appkeys.METRICS]
    metrics.accepted.inc()
    if duplicates:
        metrics.duplicates.inc(duplicates)
    if any(fresh):
        app[appkeys.ENGINE].kick()
    log.info(
        "notification recorded",
        status=notification.status,
        alerts=len(notification.alerts),
        new=new,
        duplicates=duplicates,
    )
    answer = {"status": "accepted", "new": new, "duplicates": duplicates}
    return web.json_response(answer, dumps=_json_text)


def truncation_marker(
    notification: Notification, items: dict[str, dict[str, Any]], shared: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The inbox entry that tells a truncated group's incident how many alerts
    Alertmanager left out (``transitions.note_truncation``), keyed so that a repeat of
    the same notification is not recorded twice while a new count or a new set of
    visible alerts is."""
    seen = "\n".join([notification.group_key, *sorted(items)]).encode()
    key = f"truncation:{notification.truncated_alerts}:{hashlib.sha256(seen).hexdigest()[:32]}"
    first = notification.alerts[0]
    return key, {"key": key, "alert": first.to_json(), "truncation_only": True, **shared}


def _json_text(value: Any) -> str:
    # orjson: the stdlib encoder's set-up cost ~2 us even for this small answer.
    return orjson.dumps(value).decode()
