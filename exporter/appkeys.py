"""Typed application keys, all in one place."""

from __future__ import annotations

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from feedguard.core.airflow import AirflowClient
from feedguard.core.kube import KubeReader
from feedguard.core.seatunnel import SeaTunnelClient
from feedguard.core.tracing import Tracing

from .collectors.base import Collector
from .config import ExporterConfig

CONFIG = web.AppKey("config", ExporterConfig)
REDIS = web.AppKey("redis", aioredis.Redis)
HTTP = web.AppKey("http", aiohttp.ClientSession)
# The service's tracer (Tracing.off() unless tracing.enabled).
TRACING = web.AppKey("tracing", Tracing)
COLLECTORS: web.AppKey[list[Collector]] = web.AppKey("collectors")
PROCESS_REGISTRY = web.AppKey("process_registry", CollectorRegistry)
AIRFLOW = web.AppKey("airflow", AirflowClient)
SEATUNNEL = web.AppKey("seatunnel", SeaTunnelClient)
KUBERNETES = web.AppKey("kubernetes", KubeReader)
