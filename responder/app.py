"""The responder's application factory: ``create_app(config)`` is what tests and main run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from feedguard.core.airflow import AirflowClient
from feedguard.core.build import version
from feedguard.core.http_hardening import install_http_hardening
from feedguard.core.log import get_logger
from feedguard.core.tracing import Tracing

from . import api, appkeys
from .actions import open_actions
from .approval import DECISIONS
from .approval_api import decide_step, for_decision
from .backlog import InboxMonitor
from .clients import ClientChecks, ClientWarmup
from .config import ResponderConfig
from .engine import Engine
from .evidence import open_evidence
from .metrics import Metrics
from .notes import open_notifier
from .openapi import load_spec
from .pages import setup_pages
from .plugins import Action, Notifier
from .store import StoreUnavailable, open_store
from .urgency import UrgentLane
from .webhook import WEBHOOK_AUTH, WebhookAuth, alertmanager_webhook

log = get_logger(__name__)


async def tracing_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    tracing = Tracing.start(config.tracing, "feedguard-responder", version())
    app[appkeys.TRACING] = tracing
    if tracing.enabled:
        log.info(
            "traces exported over OTLP/HTTP",
            sampling_ratio=config.tracing.sampling_ratio,
            endpoint=config.tracing.endpoint,
        )
    yield
    # Flushes the spans still queued; bounded by the export timeout, off the loop.
    await asyncio.to_thread(tracing.shutdown)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[appkeys.CONFIG])
    try:
        await store.open()
    except StoreUnavailable as exc:
        # Keep serving: /readyz says why and the webhook answers 503 until it is back.
        log.error("state store unavailable at start-up", error=str(exc))
    app[appkeys.STORE] = store
    app[appkeys.INBOX] = InboxMonitor(store, app[appkeys.CLOCK], app[appkeys.METRICS])
    config = app[appkeys.CONFIG]
    app[appkeys.URGENT] = UrgentLane(config.providers, config.playbooks, app[appkeys.CLOCK])
    yield
    await store.close()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    client = None
    if config.redis is not None:
        client = aioredis.Redis.from_url(config.redis.url, **config.redis.client_options())
    app[appkeys.REDIS] = client
    yield
    if client is not None:
        await client.aclose()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    # Recovery probes must see the provider as it is now: no pooled connection reuse.
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True), cookie_jar=aiohttp.DummyCookieJar()
    )
    app[appkeys.HTTP] = session
    yield
    await session.close()


async def plugins_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    checks = ClientChecks()
    async with contextlib.AsyncExitStack() as stack:
        actions = app[appkeys.ACTIONS_OVERRIDE]
        if actions is None:
            actions = await stack.enter_async_context(
                open_actions(config.actions, config.providers, app[appkeys.TRACING], checks=checks)
            )
        notifier = app[appkeys.NOTIFIER_OVERRIDE]
        if notifier is None:
            notifier = await stack.enter_async_context(
                open_notifier(config.notes, config.providers, app[appkeys.TRACING], checks=checks)
            )
        app[appkeys.ACTIONS] = actions
        app[appkeys.NOTIFIER] = notifier
        app[appkeys.METRICS].start_at_zero(
            actions.keys(),
            [p.name for p in config.providers.enabled if p.health_probe is not None],
            [p.name for p in config.providers.enabled],
        )
        app[appkeys.EVIDENCE] = await stack.enter_async_context(
            open_evidence(config.evidence, config.actions.kubernetes)
        )
        used = {name for _, name in config.playbook_action_names()}
        unknown = sorted(used - set(actions.keys()))
        if unknown:
            log.warning("playbooks name actions that do not exist", unknown=unknown)
        warmup = ClientWarmup(
            checks.used(used) if config.clients.check_at_start else [],
            config.clients,
            app[appkeys.METRICS].client_ready,
            app[appkeys.CLOCK],
            app[appkeys.TRACING],
        )
        app[appkeys.CLIENTS] = warmup
        # In the background: a slow or failing downstream never holds up the start.
        task = asyncio.create_task(warmup.run())
        try:
            yield
        finally:
            # Before the stack closes the clients the checks use.
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)


async def _log_ready_when_store_answers(app: web.Application, every: float = 1.0) -> None:
    config = app[appkeys.CONFIG]
    waiting = False
    while True:
        try:
            await app[appkeys.STORE].ping()
            break
        except StoreUnavailable as exc:
            if not waiting:
                log.warning("responder not ready: state store unavailable", error=str(exc))
                waiting = True
            await asyncio.sleep(every)
    log.info(
        "responder ready",
        store=config.store.backend,
        dry_run=config.dry_run,
        playbooks=[p.name for p in config.playbooks],
        actions=sorted(app[appkeys.ACTIONS].keys()),
        notes=app[appkeys.NOTIFIER] is not None,
    )


async def verify_ctx(app: web.Application) -> AsyncIterator[None]:
    """Verified recovery reads the backfill's DAG run (only when switched on); its calls
    are child spans like the actions' (docs/responder.md#verified-recovery)."""
    config = app[appkeys.CONFIG]
    if not config.verification.enabled:
        app[appkeys.VERIFY_AIRFLOW] = None
        yield
        return
    session = aiohttp.ClientSession(trace_configs=app[appkeys.TRACING].trace_configs())
    app[appkeys.VERIFY_AIRFLOW] = AirflowClient(session, config.actions.airflow)
    yield
    await session.close()


async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    engine = Engine(
        config,
        app[appkeys.STORE],
        app[appkeys.ACTIONS],
        app[appkeys.NOTIFIER],
        app[appkeys.METRICS],
        app[appkeys.CLOCK],
        http=app[appkeys.HTTP],
        redis=app[appkeys.REDIS],
        evidence=app[appkeys.EVIDENCE],
        airflow=app[appkeys.VERIFY_AIRFLOW],
        tracing=app[appkeys.TRACING],
    )
    app[appkeys.ENGINE] = engine
    loop_task = asyncio.create_task(engine.run_forever()) if app[appkeys.BACKGROUND] else None
    if not app[WEBHOOK_AUTH].required:
        log.warning("webhook authentication is off: set webhook.bearer_token or basic auth")
    # "ready" only once the store answers (what /readyz says too).
    ready_task = asyncio.create_task(_log_ready_when_store_answers(app))
    yield
    ready_task.cancel()
    engine.stop()
    if loop_task is not None:
        # The loop ends at its next wake-up; cancelling is the fallback, and the wait is
        # bounded: on Python 3.11 a cancel that lands in redis-py's socket-timeout
        # wait_for can be swallowed, leaving the task waiting forever.
        _, pending = await asyncio.wait({loop_task}, timeout=2.0)
        if pending:
            loop_task.cancel()
            await asyncio.wait({loop_task}, timeout=5.0)
    await engine.close()


def server_options(config: ResponderConfig) -> dict[str, Any]:
    """aiohttp request-handler options: aiohttp's keep-alive timer runs from a
    connection's start (and from each answer) until the next request's headers are
    complete, so it is the header read timeout as well as the idle limit.  Handlers
    are not cancelled when a client goes away (aiohttp's default for run_app): a
    notification being written is written whole, and a body read that fails is
    logged by read_body."""
    return {
        "keepalive_timeout": config.webhook.header_timeout_seconds,
        "handler_cancellation": False,
    }


def create_app(
    config: ResponderConfig,
    *,
    clock: Callable[[], float] = time.time,
    actions: Mapping[str, Action] | None = None,
    notifier: Notifier | None = None,
    background: bool = True,
) -> web.Application:
    """Build the app.  ``actions`` / ``notifier`` replace what the plugins would open
    (tests); ``background=False`` leaves ticking to the caller (``Engine.tick``)."""
    app = web.Application(client_max_size=config.webhook.max_body_bytes)
    app[appkeys.CONFIG] = config
    app[appkeys.CLOCK] = clock
    app[appkeys.METRICS] = Metrics()
    app[appkeys.ACTIONS_OVERRIDE] = actions
    app[appkeys.NOTIFIER_OVERRIDE] = notifier
    app[appkeys.BACKGROUND] = background
    app[WEBHOOK_AUTH] = WebhookAuth(
        bearer_token=config.webhook_bearer_token(),
        basic_username=config.webhook.basic_username,
        basic_password=config.webhook_basic_password(),
    )
    app[api.FEATURES_TOKEN] = config.features_token()
    app[appkeys.APPROVERS] = config.approver_tokens()
    app[appkeys.OPENAPI] = load_spec()
    install_http_hardening(app, config.http)
    app.cleanup_ctx.extend(
        [tracing_ctx, store_ctx, redis_ctx, http_ctx, plugins_ctx, verify_ctx, engine_ctx]
    )
    app.router.add_get("/", api.index)
    app.router.add_post("/webhook/alertmanager", alertmanager_webhook)
    app.router.add_get("/api/v1/incidents", api.list_incidents)
    app.router.add_get("/api/v1/incidents/{id}", api.get_incident)
    app.router.add_post("/api/v1/incidents/{id}/retry", api.retry_incident)
    for decision in DECISIONS:
        path = f"/api/v1/incidents/{{id}}/steps/{{step}}/{decision}"
        app.router.add_post(path, for_decision(decide_step, decision))
    app.router.add_get("/api/v1/ignored", api.list_ignored)
    app.router.add_get("/runtime-config/v1/features/{name}", api.get_feature)
    app.router.add_post("/runtime-config/v1/features/{name}", api.set_feature)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/openapi.json", api.openapi)
    setup_pages(app, app[api.FEATURES_TOKEN])
    return app
