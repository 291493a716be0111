"""The exporter's application factory: ``create_app(config)`` is what tests and main run."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from opentelemetry.trace import SpanKind
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)

from feedguard.core.airflow import AirflowClient
from feedguard.core.build import register_build_info, version
from feedguard.core.http_hardening import install_http_hardening
from feedguard.core.kube import KubeReader
from feedguard.core.log import get_logger
from feedguard.core.seatunnel import SeaTunnelClient
from feedguard.core.tracing import Tracing

from . import appkeys
from .collectors.airflow import AirflowCollector
from .collectors.base import Collector, Deadline
from .collectors.consumers import ConsumerProbeCollector
from .collectors.credentials import CredentialsCollector
from .collectors.dbt import DbtCollector
from .collectors.probe_onset import ProbeOnsets
from .collectors.probes import ProbeCollector
from .collectors.quality import QualityCollector
from .collectors.redis_state import RedisStateCollector
from .collectors.seatunnel import SeaTunnelCollector
from .config import ExporterConfig
from .lineage.handler import INTAKE, PATH, LineageIntake, lineage_endpoint
from .lineage.mapping import LineageIndex
from .lineage.metrics import LineageMetrics
from .lineage.store import LineageStore
from .scrape import gather, render, scrape_timeout

log = get_logger(__name__)


async def tracing_ctx(app: web.Application) -> AsyncIterator[None]:
    tracing = Tracing.start(app[appkeys.CONFIG].tracing, "feedguard-exporter", version())
    app[appkeys.TRACING] = tracing
    yield
    # Flushes the spans still queued; bounded by the export timeout, off the loop.
    await asyncio.to_thread(tracing.shutdown)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    client = aioredis.Redis.from_url(config.redis.url, **config.redis.client_options())
    app[appkeys.REDIS] = client
    yield
    await client.aclose()


def client_session(
    app: web.Application, connector: aiohttp.BaseConnector | None = None
) -> aiohttp.ClientSession:
    """A session that keeps no cookies and, with tracing on, makes its requests child spans."""
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=app[appkeys.TRACING].trace_configs(),
    )


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    # Probes must see the provider as it is now: no pooled connection reused
    # across scrapes (force_close), so every probe connects like a client would.
    connector = aiohttp.TCPConnector(limit=config.probes.concurrency, force_close=True)
    session = client_session(app, connector)
    app[appkeys.HTTP] = session
    yield
    await session.close()


async def airflow_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.CONFIG].airflow
    if not settings.enabled:
        yield
        return
    session = client_session(app, aiohttp.TCPConnector(limit=settings.concurrency))
    app[appkeys.AIRFLOW] = AirflowClient(session, settings)
    yield
    await session.close()


async def seatunnel_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.CONFIG].seatunnel
    if not settings.enabled:
        yield
        return
    session = client_session(app)
    app[appkeys.SEATUNNEL] = SeaTunnelClient(session, settings)
    yield
    await session.close()


async def kubernetes_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.CONFIG].kubernetes
    if not settings.enabled:
        yield
        return
    reader = KubeReader(settings.connection())
    app[appkeys.KUBERNETES] = reader
    yield
    await reader.close()


async def lineage_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[appkeys.CONFIG]
    settings = config.lineage
    token = settings.read_token()
    if not settings.enabled or token is None:
        yield
        return
    index = LineageIndex.from_catalog(config.providers)
    if index.empty:
        log.warning("lineage intake on, but no provider has a lineage mapping: nothing can match")
    app[INTAKE] = LineageIntake(
        settings=settings,
        token=token,
        index=index,
        store=LineageStore(app[appkeys.REDIS], settings.seen_ttl_seconds),
        metrics=LineageMetrics(app[appkeys.PROCESS_REGISTRY]),
    )
    yield


def build_collectors(app: web.Application) -> list[Collector]:
    config = app[appkeys.CONFIG]
    catalog = config.providers
    collectors: list[Collector] = [RedisStateCollector(app[appkeys.REDIS], catalog)]
    if config.probes.enabled:
        collectors.append(
            ProbeCollector(
                app[appkeys.HTTP],
                catalog,
                concurrency=config.probes.concurrency,
                user_agent=config.probes.user_agent,
                onsets=ProbeOnsets(
                    app[appkeys.REDIS],
                    app[appkeys.PROCESS_REGISTRY],
                    config.probes.onset_ttl_seconds,
                ),
            )
        )
    if config.airflow.enabled:
        collectors.append(
            AirflowCollector(
                app[appkeys.AIRFLOW],
                catalog,
                runs_window=config.airflow.runs_window,
                concurrency=config.airflow.concurrency,
            )
        )
    if config.dbt.enabled:
        collectors.append(DbtCollector(config.dbt))
    if config.quality.enabled:
        collectors.append(QualityCollector(config.quality))
    if config.seatunnel.enabled:
        collectors.append(SeaTunnelCollector(app[appkeys.SEATUNNEL], catalog))
    if config.kubernetes.enabled:
        collectors.append(CredentialsCollector(app[appkeys.KUBERNETES], catalog))
    consumers = ConsumerProbeCollector(
        app[appkeys.HTTP],
        catalog,
        concurrency=config.probes.concurrency,
        user_agent=config.probes.user_agent,
    )
    if not consumers.empty:  # none configured: no collector, no cost
        collectors.append(consumers)
    return collectors


async def collectors_ctx(app: web.Application) -> AsyncIterator[None]:
    app[appkeys.COLLECTORS] = build_collectors(app)
    names = [c.name for c in app[appkeys.COLLECTORS]]
    config = app[appkeys.CONFIG]
    log.info(
        "exporter ready",
        collectors=names,
        providers=[p.name for p in config.providers.enabled],
        datasets=len(config.providers.datasets()),
    )
    yield


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    config = app[appkeys.CONFIG]
    timeout = scrape_timeout(
        request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"),
        config.scrape.default_timeout_seconds,
        config.scrape.max_timeout_seconds,
    )
    deadline = Deadline.in_seconds(max(0.05, timeout - config.scrape.deadline_margin_seconds))
    collectors: list[Collector] = app[appkeys.COLLECTORS]
    tracing = app[appkeys.TRACING]
    # One trace per scrape (sampled at tracing.sampling_ratio): a span per collector,
    # their probe, Airflow and SeaTunnel calls as its children.
    attributes = {"http.request.method": "GET", "http.route": "/metrics"}
    with tracing.span("GET /metrics", kind=SpanKind.SERVER, attributes=attributes):
        families = await gather(collectors, deadline, tracing)
        body = render(families, app[appkeys.PROCESS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis, the source of the freshness series, answers."""
    try:
        await request.app[appkeys.REDIS].ping()
    except Exception as exc:
        return web.json_response(
            {"status": "unavailable", "redis": f"{type(exc).__name__}: {exc}"}, status=503
        )
    return web.json_response({"status": "ok", "redis": "ok"})


async def index(request: web.Request) -> web.Response:
    config = request.app[appkeys.CONFIG]
    providers = "".join(
        f"<li>{html.escape(p.name)}: {len(p.datasets)} datasets"
        f"{'' if p.enabled else ' (disabled)'}</li>"
        for p in config.providers.providers
    )
    body = (
        "<!doctype html><html><head><title>feedguard exporter</title></head><body>"
        "<h1>feedguard exporter</h1>"
        "<p><a href='/metrics'>/metrics</a> · <a href='/healthz'>/healthz</a>"
        " · <a href='/readyz'>/readyz</a></p>"
        f"<h2>Catalog</h2><ul>{providers}</ul></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


def process_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    register_build_info(registry)
    return registry


def create_app(config: ExporterConfig) -> web.Application:
    app = web.Application()
    app[appkeys.CONFIG] = config
    app[appkeys.PROCESS_REGISTRY] = process_registry()
    install_http_hardening(app, config.http)
    app.cleanup_ctx.extend(
        [
            tracing_ctx,
            redis_ctx,
            http_ctx,
            airflow_ctx,
            seatunnel_ctx,
            kubernetes_ctx,
            lineage_ctx,
            collectors_ctx,
        ]
    )
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if config.lineage.enabled:
        app.router.add_post(PATH, lineage_endpoint)
    return app
