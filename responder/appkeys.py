"""Typed application keys, all in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from feedguard.core.airflow import AirflowClient
from feedguard.core.tracing import Tracing

from .backlog import InboxMonitor
from .clients import ClientWarmup
from .config import ResponderConfig
from .engine import Engine
from .evidence import EvidenceGatherer
from .metrics import Metrics
from .plugins import Action, Notifier
from .store import Store
from .urgency import UrgentLane

CONFIG = web.AppKey("config", ResponderConfig)
INBOX = web.AppKey("inbox", InboxMonitor)
URGENT = web.AppKey("urgent", UrgentLane)
METRICS = web.AppKey("metrics", Metrics)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
STORE = web.AppKey("store", Store)
# Optional: only when the config has a redis section (last_success_before).
REDIS: web.AppKey[aioredis.Redis | None] = web.AppKey("redis")
HTTP = web.AppKey("http", aiohttp.ClientSession)
ACTIONS: web.AppKey[Mapping[str, Action]] = web.AppKey("actions")
NOTIFIER: web.AppKey[Notifier | None] = web.AppKey("notifier")
# None when evidence is switched off (evidence.enabled: false).
EVIDENCE: web.AppKey[EvidenceGatherer | None] = web.AppKey("evidence")
ENGINE = web.AppKey("engine", Engine)
# Verified recovery's Airflow client; None when verification is switched off.
VERIFY_AIRFLOW: web.AppKey[AirflowClient | None] = web.AppKey("verify_airflow")
# The service's tracer (Tracing.off() unless tracing.enabled).
TRACING = web.AppKey("tracing", Tracing)
# The start-up checks of the outside clients and their state (/readyz, client_ready).
CLIENTS = web.AppKey("clients", ClientWarmup)
# Test seams set by create_app(...): replace what open_actions / open_notifier yield.
ACTIONS_OVERRIDE: web.AppKey[Mapping[str, Action] | None] = web.AppKey("actions_override")
NOTIFIER_OVERRIDE: web.AppKey[Notifier | None] = web.AppKey("notifier_override")
# Whether the app runs its own background tick loop (tests drive Engine.tick() instead).
BACKGROUND = web.AppKey("background", bool)
# The OpenAPI document (responder/openapi.yml), read once at start.
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
# {token: approver name} of everyone who may decide a step (config.approver_tokens()).
APPROVERS: web.AppKey[Mapping[str, str]] = web.AppKey("approvers")
