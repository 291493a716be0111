"""Great Expectations suite results as metrics: the newest run of each suite in the
validations store of a file-mode context (``feedguard.core.gx_results`` finds and
reads them, in a worker thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from pydantic import Field

from feedguard.core.gx_results import ValidationStore, ValidationStoreError
from feedguard.core.log import get_logger
from feedguard.core.schema import ConfigModel, Items

from .base import Deadline

log = get_logger(__name__)


class QualitySettings(ConfigModel):
    enabled: bool = False
    validations_dir: str = Field(
        "gx/uncommitted/validations", description="a file-mode GX context's validations store"
    )
    # Empty: every suite found in the store.
    suites: Items[str] = ()


class QualityCollector:
    name = "quality"

    def __init__(self, settings: QualitySettings) -> None:
        self.store = ValidationStore(Path(settings.validations_dir))
        self._suites = settings.suites
        self._lock = asyncio.Lock()  # the store's caches are used by one thread at a time
        self._missing_reported: set[str] = set()

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        async with self._lock:
            results = await asyncio.to_thread(self.store.scan, self._suites)
            missing = self.store.missing
        for suite in missing:
            if suite not in self._missing_reported:
                self._missing_reported.add(suite)
                log.warning(
                    "configured quality suite has no validation result in the store",
                    suite=suite,
                    validations_dir=str(self.store.root),
                )
        # A suite that turns up later is reported again if it disappears again.
        self._missing_reported.intersection_update(missing)
        success = GaugeMetricFamily(
            "external_quality_suite_success",
            "1 when the newest validation run of the suite passed.",
            labels=["suite"],
        )
        last_run = GaugeMetricFamily(
            "external_quality_suite_last_run_timestamp",
            "When the newest validation run of the suite happened (epoch seconds).",
            labels=["suite"],
        )
        unsuccessful = GaugeMetricFamily(
            "external_quality_suite_unsuccessful_expectations",
            "Expectations that failed in the newest validation run of the suite.",
            labels=["suite"],
        )
        found = GaugeMetricFamily(
            "external_quality_suite_found",
            "1 when a suite named in quality.suites has a validation result in the store.",
            labels=["suite"],
        )
        for suite in self._suites:
            found.add_metric([suite], 0.0 if suite in missing else 1.0)
        for result in results:
            success.add_metric([result.suite], 1.0 if result.success else 0.0)
            last_run.add_metric([result.suite], result.run_time)
            unsuccessful.add_metric([result.suite], float(result.unsuccessful))
        return [success, last_run, unsuccessful, found]


__all__ = ["QualityCollector", "QualitySettings", "ValidationStore", "ValidationStoreError"]
