"""Freshness where consumers read it: the newest data timestamp a consumer API serves.

Per ``consumer_probes`` entry of an enabled provider (catalog): one GET with the
entry's bearer token, the JSON answer's value at ``timestamp_pointer`` read as
epoch seconds or ISO 8601 with an offset.  Bounded like the health probes by
the smaller of the entry's ``timeout_seconds`` and what is left of the scrape.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.catalog import Catalog, ConsumerProbe
from feedguard.core.log import get_logger
from feedguard.core.schema import ConfigError, read_secret
from feedguard.core.times import iso_epoch

from .base import Deadline

log = get_logger(__name__)
# A consumer answer is a small JSON document; a huge one is a failure, not a read.
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ConsumerResult:
    timestamp: float | None  # None unless the probe succeeded
    duration_seconds: float
    status_code: int  # 0 when no HTTP answer arrived
    error: str | None = None


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at ``pointer``; KeyError naming the missing part."""
    value = document
    if not pointer:
        return value
    for raw in pointer[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list):
            if not part.isdigit() or int(part) >= len(value):
                raise KeyError(f"no item {part!r} at {pointer!r}")
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise KeyError(f"no {part!r} at {pointer!r}")
    return value


def data_timestamp(value: Any) -> float:
    """Epoch seconds from a number or an ISO 8601 string with an offset; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected epoch seconds or ISO 8601, got {value!r}")
    if isinstance(value, int | float):
        stamp = float(value)
    elif isinstance(value, str):
        stamp = iso_epoch(value)
    else:
        raise ValueError(f"expected epoch seconds or ISO 8601, got {type(value).__name__}")
    if not math.isfinite(stamp) or stamp <= 0:
        raise ValueError(f"not a positive epoch time: {value!r}")
    return stamp


async def probe_consumer(
    session: aiohttp.ClientSession,
    spec: ConsumerProbe,
    token: str | None,
    budget_seconds: float,
    user_agent: str,
) -> ConsumerResult:
    """Probe once; never raises for the consumer's faults, only reports them."""
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    status = 0
    try:
        async with asyncio.timeout(budget_seconds):
            async with session.get(spec.url, headers=headers) as response:
                status = response.status
                body = await response.content.read(MAX_BODY_BYTES + 1)
    except TimeoutError:
        return ConsumerResult(None, time.perf_counter() - started, status, "timeout")
    except (aiohttp.ClientError, OSError) as exc:
        return ConsumerResult(None, time.perf_counter() - started, 0, type(exc).__name__)
    duration = time.perf_counter() - started
    if status != 200:
        return ConsumerResult(None, duration, status, f"HTTP {status}")
    if len(body) > MAX_BODY_BYTES:
        return ConsumerResult(None, duration, status, f"answer over {MAX_BODY_BYTES} bytes")
    try:
        stamp = data_timestamp(resolve_pointer(json.loads(body), spec.timestamp_pointer))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ConsumerResult(None, duration, status, "answer is not JSON")
    except (KeyError, ValueError) as exc:
        return ConsumerResult(None, duration, status, str(exc).strip("'\""))
    return ConsumerResult(stamp, duration, status)


def read_tokens(catalog: Catalog) -> dict[tuple[str, str], str | None]:
    """Every enabled consumer probe's token by (provider, endpoint); ConfigError lists bad files."""
    tokens: dict[tuple[str, str], str | None] = {}
    errors: list[str] = []
    for provider in catalog.enabled:
        for spec in provider.consumer_probes:
            try:
                token = read_secret(None, spec.token_file, "consumer probe token")
            except ConfigError as exc:
                errors.extend(exc.errors)
                continue
            if spec.token_file and not token:
                errors.append(f"{spec.token_file}: <file>: the consumer probe token is empty")
            tokens[(provider.name, spec.endpoint)] = token
    if errors:
        raise ConfigError(errors)
    return tokens


class ConsumerProbeCollector:
    name = "consumers"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        catalog: Catalog,
        concurrency: int = 32,
        user_agent: str = "feedguard",
    ) -> None:
        self._session = session
        self._probes = [(p.name, c) for p in catalog.enabled for c in p.consumer_probes]
        # Read once at start-up (load_config has checked the files).
        self._tokens = read_tokens(catalog)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._user_agent = user_agent
        self._last_error: dict[tuple[str, str], str | None] = {}

    @property
    def empty(self) -> bool:
        return not self._probes

    async def _probe(
        self, provider: str, spec: ConsumerProbe, deadline: Deadline
    ) -> ConsumerResult:
        async with self._semaphore:
            result = await probe_consumer(
                self._session,
                spec,
                self._tokens[(provider, spec.endpoint)],
                deadline.bound(spec.timeout_seconds),
                self._user_agent,
            )
        key = (provider, spec.endpoint)
        if self._last_error.get(key, "") != result.error:
            # Log transitions, not every failing scrape.
            self._last_error[key] = result.error
            if result.error:
                log.warning(
                    "consumer probe failing",
                    provider=provider,
                    endpoint=spec.endpoint,
                    error=result.error,
                )
            else:
                log.info("consumer probe healthy", provider=provider, endpoint=spec.endpoint)
        return result

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        results = await asyncio.gather(
            *(self._probe(provider, spec, deadline) for provider, spec in self._probes)
        )
        labels = ["provider", "endpoint"]
        stamp = GaugeMetricFamily(
            "external_consumer_data_timestamp",
            "Newest data timestamp the consumer endpoint serves (absent when the probe failed).",
            labels=labels,
        )
        success = GaugeMetricFamily(
            "external_consumer_probe_success",
            "1 when the consumer endpoint answered 200 with a readable data timestamp.",
            labels=labels,
        )
        duration = GaugeMetricFamily(
            "external_consumer_probe_duration_seconds",
            "Duration of the last consumer probe.",
            labels=labels,
        )
        status = GaugeMetricFamily(
            "external_consumer_probe_http_status_code",
            "HTTP status of the last consumer probe, 0 when none arrived.",
            labels=labels,
        )
        for (provider, spec), result in zip(self._probes, results, strict=True):
            values = [provider, spec.endpoint]
            if result.timestamp is not None:
                stamp.add_metric(values, result.timestamp)
            success.add_metric(values, 0.0 if result.timestamp is None else 1.0)
            duration.add_metric(values, result.duration_seconds)
            status.add_metric(values, float(result.status_code))
        return [stamp, success, duration, status]
