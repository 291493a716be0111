"""Freshness and cached provider status from Redis, in one MGET per scrape."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from feedguard.core.catalog import Catalog
from feedguard.core.keys import last_success_key, provider_status_key
from feedguard.core.log import get_logger

from .base import Deadline

STATUSES = ("up", "degraded", "down", "unknown")

log = get_logger(__name__)


def parse_status(raw: bytes | None) -> tuple[str, float | None, str | None]:
    """(status, checked_at, problem) from a cached status value.

    Accepts the JSON object of the contracts or a bare ``up``/``degraded``/``down``.
    """
    if raw is None:
        return "unknown", None, None
    text = raw.decode("utf-8", "replace").strip()
    if text.lower() in STATUSES[:3]:
        return text.lower(), None, None
    try:
        value: Any = json.loads(text)
    except ValueError:
        return "unknown", None, f"neither JSON nor a bare status: {text[:80]!r}"
    if isinstance(value, str) and value.lower() in STATUSES[:3]:
        return value.lower(), None, None  # a JSON-encoded bare string
    if not isinstance(value, dict):
        return "unknown", None, f"JSON is not an object: {text[:80]!r}"
    status = value.get("status")
    if not isinstance(status, str) or status.lower() not in STATUSES[:3]:
        return "unknown", None, f"'status' is {status!r}, expected up, degraded or down"
    checked_at = value.get("checked_at")
    if (
        isinstance(checked_at, bool)
        or not isinstance(checked_at, int | float)
        or not math.isfinite(checked_at)
    ):
        checked_at = None
    return status.lower(), float(checked_at) if checked_at is not None else None, None


def parse_timestamp(raw: bytes | None) -> tuple[float | None, str | None]:
    if raw is None:
        return None, None
    try:
        value = float(raw)
    except ValueError:
        return None, f"not epoch seconds: {raw[:40]!r}"
    if not math.isfinite(value) or value < 0:
        return None, f"not epoch seconds: {value!r}"
    return value, None


class RedisStateCollector:
    """``external_data_last_success_timestamp`` and ``external_provider_status``.

    One MGET per scrape reads every provider status and every dataset's last
    success.  A catalog dataset with no key yet has no timestamp sample, and
    ``external_data_last_success_recorded`` says so with 0.
    """

    name = "redis"

    def __init__(self, client: aioredis.Redis, catalog: Catalog) -> None:
        self._client = client
        providers = catalog.enabled
        self._providers = [p.name for p in providers]
        self._slas = [(p.name, p.freshness_sla_seconds) for p in providers]
        datasets = catalog.datasets()
        # Built once: the catalog is fixed for the life of the process, and at
        # 10,000 datasets per-scrape label dicts and key strings add up.  The
        # label dicts are shared by every scrape's samples and never mutated.
        self._dataset_keys = [last_success_key(p, d) for p, d in datasets]
        self._dataset_labels = [{"provider": p, "dataset": d} for p, d in datasets]
        self._keys = [provider_status_key(p) for p in self._providers] + self._dataset_keys
        self._reported: dict[str, bytes] = {}

    def _problem(self, key: str, raw: bytes, problem: str) -> None:
        # Logged once per distinct bad value, not on every scrape.
        if self._reported.get(key) != raw:
            self._reported[key] = raw
            log.warning("malformed redis value", key=key, problem=problem)

    def _fine(self, key: str) -> None:
        if self._reported:
            self._reported.pop(key, None)

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        values: list[Any] = await self._client.mget(self._keys) if self._keys else []
        count = len(self._providers)
        families = self._freshness(values[count:])
        families.extend(self._statuses(values[:count]))
        return families

    def _freshness(self, stamps: Sequence[bytes | None]) -> list[Metric]:
        last_success = GaugeMetricFamily(
            "external_data_last_success_timestamp",
            "Epoch seconds of the last successful load of a dataset.",
            labels=["provider", "dataset"],
        )
        recorded = GaugeMetricFamily(
            "external_data_last_success_recorded",
            "1 when a last success is recorded for a catalog dataset, 0 when none is yet.",
            labels=["provider", "dataset"],
        )
        # The hot loop of a large catalog: samples are appended directly (what
        # add_metric does, minus building a label dict per call).
        success_samples = last_success.samples
        recorded_samples = recorded.samples
        success_name = last_success.name
        recorded_name = recorded.name
        for labels, key, raw in zip(self._dataset_labels, self._dataset_keys, stamps, strict=True):
            if raw is None:
                recorded_samples.append(Sample(recorded_name, labels, 0.0))
                continue
            value, problem = parse_timestamp(raw)
            if value is None:
                self._problem(key, raw, problem or "unreadable")
                recorded_samples.append(Sample(recorded_name, labels, 0.0))
                continue
            self._fine(key)
            recorded_samples.append(Sample(recorded_name, labels, 1.0))
            success_samples.append(Sample(success_name, labels, value))
        return [last_success, recorded]

    def _statuses(self, raws: Sequence[bytes | None]) -> list[Metric]:
        status = GaugeMetricFamily(
            "external_provider_status",
            "Cached provider status from Redis: 1 for the current status, 0 for the others.",
            labels=["provider", "status"],
        )
        checked = GaugeMetricFamily(
            "external_provider_status_checked_at_timestamp",
            "When the cached provider status was last checked (epoch seconds), if it says.",
            labels=["provider"],
        )
        for provider, raw in zip(self._providers, raws, strict=True):
            current, checked_at, problem = parse_status(raw)
            key = provider_status_key(provider)
            if problem and raw is not None:
                self._problem(key, raw, problem)
            else:
                self._fine(key)
            for candidate in STATUSES:
                status.add_metric([provider, candidate], 1.0 if candidate == current else 0.0)
            if checked_at is not None:
                checked.add_metric([provider], checked_at)
        sla = GaugeMetricFamily(
            "external_provider_freshness_sla_seconds",
            "The provider's freshness SLA from the catalog.",
            labels=["provider"],
        )
        for provider, seconds in self._slas:
            sla.add_metric([provider], seconds)
        return [status, checked, sla]
