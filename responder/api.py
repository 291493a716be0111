"""Read API (incidents), feature flags, health and metrics endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feedguard.core.auth import check_bearer
from feedguard.core.intake import Refused, read_json, refusal_response, send_refusal
from feedguard.core.log import get_logger

from . import appkeys, flags
from . import incidents as inc
from .isotimes import with_iso_times
from .payload import storable
from .store import StoreUnavailable

log = get_logger(__name__)


def _unavailable(exc: StoreUnavailable) -> web.Response:
    return web.json_response({"error": f"state store unavailable: {exc}"}, status=503)


async def list_incidents(request: web.Request) -> web.Response:
    store = request.app[appkeys.STORE]
    state = request.query.get("state")
    provider = request.query.get("provider")
    if state is not None and state not in inc.STATES:
        return web.json_response(
            {"error": f"state: expected one of {', '.join(inc.STATES)}"}, status=400
        )
    try:
        docs = await store.list("incident")
    except StoreUnavailable as exc:
        return _unavailable(exc)
    rows = [
        inc.summary(doc)
        for doc in docs
        if (state is None or doc["state"] == state)
        and (provider is None or doc["provider"] == provider)
    ]
    rows.sort(key=lambda row: row["opened_at"], reverse=True)
    return web.json_response({"incidents": with_iso_times(rows)})


def _no_incident(ident: str) -> web.Response:
    return web.json_response({"error": f"no incident {ident!r}"}, status=404)


async def get_incident(request: web.Request) -> web.Response:
    ident = request.match_info["id"]
    if not storable(ident):
        return _no_incident(ident)
    try:
        doc = await request.app[appkeys.STORE].get("incident", ident)
    except StoreUnavailable as exc:
        return _unavailable(exc)
    if doc is None:
        return _no_incident(ident)
    return web.json_response(with_iso_times(inc.detail(doc)))


async def list_ignored(request: web.Request) -> web.Response:
    try:
        doc = await request.app[appkeys.STORE].get("ignored", "recent")
    except StoreUnavailable as exc:
        return _unavailable(exc)
    entries = list(reversed((doc or {}).get("entries", [])))
    return web.json_response({"ignored": with_iso_times(entries)})


async def retry_incident(request: web.Request) -> web.Response:
    """Re-run an incident's failed steps once the cause is fixed (features token)."""
    refused = _flag_auth(request)
    if refused is not None:
        return refused
    ident = request.match_info["id"]
    if not storable(ident):
        return _no_incident(ident)
    try:
        found = await request.app[appkeys.ENGINE].retry(ident)
    except StoreUnavailable as exc:
        return _unavailable(exc)
    if not found:
        return _no_incident(ident)
    return web.json_response({"status": "retrying", "id": ident}, status=202)


def _flag_auth(request: web.Request) -> web.Response | None:
    token = request.app[FEATURES_TOKEN]
    if token is None:
        return web.json_response(
            {"error": "feature flags are disabled: set features.token or FEEDGUARD_FEATURES_TOKEN"},
            status=503,
        )
    if not check_bearer(request.headers.get("Authorization"), token):
        return web.json_response(
            {"error": "missing or wrong bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="feedguard"'},
        )
    return None


FEATURES_TOKEN: web.AppKey[str | None] = web.AppKey("features_token")


def _flag_refused(request: web.Request) -> web.Response | None:
    """The answer to a flag request without the token (401/503) or for an unknown flag (404)."""
    refused = _flag_auth(request)
    if refused is not None:
        return refused
    name = request.match_info["name"]
    app = request.app
    if not flags.known(name, list(app[appkeys.ACTIONS].keys())):
        return web.json_response({"error": _unknown_flag(name, app)}, status=404)
    return None


async def get_feature(request: web.Request) -> web.Response:
    refused = _flag_refused(request)
    if refused is not None:
        return refused
    name = request.match_info["name"]
    app = request.app
    try:
        flag = await flags.effective(app[appkeys.CONFIG], app[appkeys.STORE], name)
    except StoreUnavailable as exc:
        return _unavailable(exc)
    return web.json_response(with_iso_times(flag))


def _unknown_flag(name: str, app: web.Application) -> str:
    actions: Mapping[str, Any] = app[appkeys.ACTIONS]
    known = ["dry_run", *(f"action.{a}" for a in sorted(actions))]
    return f"unknown feature {name!r} (known: {', '.join(known)})"


async def set_feature(request: web.Request) -> web.Response:
    refused = _flag_refused(request)
    if refused is not None:
        return refused
    name = request.match_info["name"]
    app = request.app
    hook = app[appkeys.CONFIG].webhook
    try:
        body: Any = await read_json(request, hook.max_body_bytes, hook.body_timeout_seconds)
    except Refused as bad_body:
        return await send_refusal(request, refusal_response(bad_body))
    try:
        value = flags.validate_body(body)
    except ValueError as exc:
        return web.json_response({"error": f"invalid body: {exc}"}, status=400)
    record = {"name": name, **value, "updated_at": app[appkeys.CLOCK](), "live": True}
    try:
        await app[appkeys.STORE].update(flags.KIND, name, lambda doc: (record, None))
    except StoreUnavailable as exc:
        return _unavailable(exc)
    log.info("feature flag set", flag=name, enabled=value["enabled"])
    return web.json_response(with_iso_times({**record, "source": "runtime"}))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    # Outside clients are reported, never a reason to be unready: notifications must
    # still be taken while Kubernetes or Airflow is down (the steps retry).
    clients = app[appkeys.CLIENTS].view()
    try:
        await app[appkeys.STORE].ping()
        backlog = await app[appkeys.INBOX].read()
    except StoreUnavailable as exc:
        return web.json_response(
            {"status": "unavailable", "store": str(exc), "clients": clients}, status=503
        )
    inbox = {"depth": backlog.depth, "oldest_age_seconds": round(backlog.oldest_age_seconds, 3)}
    answer = {"store": "ok", "inbox": inbox, "clients": clients}
    if backlog.oldest_age_seconds > app[appkeys.CONFIG].inbox.ready_max_age_seconds:
        # Alert transitions wait longer than allowed: the runbook is not being run.
        return web.json_response({"status": "backlog", **answer}, status=503)
    return web.json_response({"status": "ok", **answer})


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    registry = app[appkeys.METRICS]
    try:
        live = await app[appkeys.STORE].list("incident", live_only=True)
        await app[appkeys.INBOX].read()  # sets the inbox gauges
    except StoreUnavailable:
        live = None  # keep the last known values
    if live is not None:
        gauge = registry.open_incidents
        gauge.clear()
        truncated = registry.incident_truncated
        truncated.clear()
        for doc in live:
            if doc["state"] != inc.RESOLVED:
                gauge.labels(doc["provider"], doc["state"]).inc()
            pending = doc.get("truncation") or {}
            if pending and pending.get("completed_at") is None:
                truncated.labels(doc["provider"]).set(pending["truncated_alerts"])
    return web.Response(
        body=generate_latest(registry.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "service": "feedguard-responder",
            "endpoints": [
                "POST /webhook/alertmanager",
                "GET /incidents",
                "GET /incidents/{id}",
                "GET /api/v1/incidents",
                "GET /api/v1/incidents/{id}",
                "POST /api/v1/incidents/{id}/retry",
                "POST /api/v1/incidents/{id}/steps/{step}/approve",
                "POST /api/v1/incidents/{id}/steps/{step}/deny",
                "GET /api/v1/ignored",
                "GET|POST /runtime-config/v1/features/{name}",
                "GET /healthz",
                "GET /readyz",
                "GET /metrics",
                "GET /openapi.json",
            ],
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[appkeys.OPENAPI])
