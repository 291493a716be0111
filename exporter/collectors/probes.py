"""Active health probes of every enabled provider, concurrently, under the scrape deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.catalog import Catalog, Provider
from feedguard.core.log import get_logger
from feedguard.core.probes import ProbeResult, probe

from .base import Deadline
from .probe_onset import ProbeOnsets

log = get_logger(__name__)


class ProbeCollector:
    name = "probes"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        catalog: Catalog,
        concurrency: int = 32,
        user_agent: str = "feedguard",
        onsets: ProbeOnsets | None = None,
    ) -> None:
        self._session = session
        self._onsets = onsets
        self._providers = [p for p in catalog.enabled if p.health_probe is not None]
        self._semaphore = asyncio.Semaphore(concurrency)
        self._user_agent = user_agent
        # Consecutive successes survive between scrapes; a failure resets them.
        self._streaks: dict[str, int] = {}
        self._last_error: dict[str, str | None] = {}

    async def _probe(self, provider: Provider, deadline: Deadline) -> ProbeResult:
        assert provider.health_probe is not None
        async with self._semaphore:
            return await probe(
                self._session,
                provider.health_probe,
                budget_seconds=deadline.bound(provider.health_probe.timeout_seconds),
                user_agent=self._user_agent,
            )

    def _record(self, provider: str, result: ProbeResult) -> int:
        streak = self._streaks.get(provider, 0) + 1 if result.success else 0
        self._streaks[provider] = streak
        if self._last_error.get(provider) != result.error:
            # Log transitions, not every failing scrape.
            self._last_error[provider] = result.error
            if result.error:
                log.warning("probe failing", provider=provider, error=result.error)
            else:
                log.info("probe healthy", provider=provider, status=result.status_code)
        return streak

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        results = await asyncio.gather(*(self._probe(p, deadline) for p in self._providers))
        if self._onsets is not None:
            await self._onsets.record(
                [(p.name, r.success) for p, r in zip(self._providers, results, strict=True)],
                deadline,
            )
        success = GaugeMetricFamily(
            "external_provider_probe_success",
            "1 when the last health probe of the provider succeeded.",
            labels=["provider"],
        )
        duration = GaugeMetricFamily(
            "external_provider_probe_duration_seconds",
            "Duration of the last health probe.",
            labels=["provider"],
        )
        status = GaugeMetricFamily(
            "external_provider_probe_http_status_code",
            "HTTP status of the last health probe, 0 when none arrived.",
            labels=["provider"],
        )
        streaks = GaugeMetricFamily(
            "external_provider_probe_consecutive_successes",
            "Successful health probes in a row (recovery needs 2).",
            labels=["provider"],
        )
        for provider, result in zip(self._providers, results, strict=True):
            labels = [provider.name]
            success.add_metric(labels, 1.0 if result.success else 0.0)
            duration.add_metric(labels, result.duration_seconds)
            status.add_metric(labels, float(result.status_code))
            streaks.add_metric(labels, float(self._record(provider.name, result)))
        return [success, duration, status, streaks]
