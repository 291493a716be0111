"""``POST /api/v1/lineage``: authenticate, validate against the spec, map, write, answer.

The path and body are those of OpenLineage's HTTP transport (Airflow's provider,
Marquez clients): one JSON event per request.  Refusals are the webhook's
(feedguard.core.intake): 401, 413, 400 naming the field; 503 when Redis fails,
so the sender may retry.  Nothing is written for a refused request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from aiohttp import web

from feedguard.core.auth import check_bearer
from feedguard.core.intake import (
    Refused,
    read_json,
    refusal_response,
    send_refusal,
    unauthorized,
)
from feedguard.core.log import get_logger
from feedguard.core.record import check_load_time

from .event import LineageEvent, parse_run_event
from .mapping import LineageIndex, Plan
from .metrics import LineageMetrics
from .settings import LineageSettings
from .spec import InvalidEvent, validate
from .store import LineageStore

log = get_logger(__name__)
PATH = "/api/v1/lineage"
# As the webhook's default: a sender that has not sent its whole body by then is
# cut off (408, connection closed) instead of holding a connection.
BODY_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class LineageIntake:
    settings: LineageSettings
    token: str
    index: LineageIndex
    store: LineageStore
    metrics: LineageMetrics
    clock: Callable[[], float] = time.time


INTAKE = web.AppKey("lineage_intake", LineageIntake)


def _event(data: Any, now: float) -> LineageEvent | None:
    """The RunEvent in ``data``; None for a valid DatasetEvent or JobEvent (nothing to do)."""
    try:
        if not validate(data):
            return None
        event = parse_run_event(data)
        if event.event_type == "COMPLETE":
            # The same rule as record-success: a load cannot finish in the future.
            check_load_time(event.event_time, now)
    except (InvalidEvent, ValueError) as exc:
        raise Refused(400, f"invalid event: {exc}", "invalid") from None
    return event


async def lineage_endpoint(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    started = time.perf_counter()
    try:
        if not check_bearer(request.headers.get("Authorization"), intake.token):
            raise unauthorized()
        data = await read_json(request, intake.settings.max_body_bytes, BODY_TIMEOUT_SECONDS)
        now = intake.clock()
        event = _event(data, now)
        answer = await _apply(intake, event, now)
    except Refused as refused:
        intake.metrics.requests.labels(refused.result).inc()
        log.warning(
            "lineage event refused",
            status=refused.status,
            reason=refused.message,
            peer=request.remote,
        )
        return await send_refusal(request, refusal_response(refused))
    finally:
        intake.metrics.duration.observe(time.perf_counter() - started)
    intake.metrics.requests.labels("accepted").inc()
    return web.json_response({"status": "accepted", **answer})


async def _apply(intake: LineageIntake, event: LineageEvent | None, now: float) -> dict[str, Any]:
    if event is None:
        intake.metrics.events.labels("", "ignored").inc()
        return {"result": "ignored"}
    plan = intake.index.plan(event, intake.settings.provider_conf_key)
    try:
        result, details = await _write(intake, event, plan, now)
    except redis.RedisError as exc:
        log.error("lineage event not recorded: redis failed", error=f"{type(exc).__name__}")
        raise Refused(503, "redis unavailable, retry later", "unavailable") from None
    intake.metrics.events.labels(event.event_type, result).inc()
    return {"result": result, **details}


async def _write(
    intake: LineageIntake, event: LineageEvent, plan: Plan, now: float
) -> tuple[str, dict[str, Any]]:
    metrics = intake.metrics
    if plan.kind == "load":
        moved = await intake.store.record_loads(plan.loads, event.event_time)
        loads = []
        for (provider, dataset), forward in zip(plan.loads, moved, strict=True):
            outcome = "recorded" if forward else "kept"
            metrics.loads.labels(provider, dataset, outcome).inc()
            loads.append({"provider": provider, "dataset": dataset, "result": outcome})
        result = "recorded" if any(moved) else "kept"
        if any(moved):
            # Debug: at 1,000 events/s a line per load was a third of the handler's
            # time; external_lineage_loads_total counts them.
            log.debug("lineage load recorded", job=event.job_name, run_id=event.run_id, loads=loads)
        return result, {"loads": loads}
    if plan.kind == "failure":
        first = await intake.store.record_failure(event, plan.provider, now)
        if not first:
            return "duplicate", {}
        metrics.job_failures.labels(event.job_namespace, event.job_name, event.event_type).inc()
        log.warning(
            "lineage job failed",
            job=event.job_name,
            event_type=event.event_type,
            provider=plan.provider,
            run_id=event.run_id,
            has_message=event.error_message is not None,  # kept in Redis, not logged
        )
        return "failure", {"provider": plan.provider}
    return plan.kind, {}
