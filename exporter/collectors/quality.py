"""Great Expectations suite results from the validations store of a file-mode context.

GX (1.x and 0.x alike) stores every validation result at
``<validations>/<suite, dots as folders>/<run_name>/<run time>/<batch>.json``
with run times named ``YYYYMMDDTHHMMSS.ffffffZ``, which sort in time order. The
newest run of a suite is therefore found from directory names alone; each
directory's listing is cached by its mtime (a new run changes the mtime of the
run-name folder it lands in), and only the newest run's result files are read.
All of it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.log import get_logger
from feedguard.core.schema import field

from .base import Deadline

log = get_logger(__name__)

RACY_NS = 2_000_000_000
RUN_TIME = re.compile(r"^\d{8}T\d{6}(\.\d{1,6})?Z$")


@dataclass(frozen=True)
class QualitySettings:
    enabled: bool = False
    validations_dir: str = field(
        "gx/uncommitted/validations", doc="a file-mode GX context's validations store"
    )
    # Empty: every suite found in the store.
    suites: tuple[str, ...] = ()


class ValidationStoreError(Exception):
    """The store or a newest result file cannot be used; the message says which and why."""


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    success: bool
    run_time: float
    unsuccessful: int
    evaluated: int
    files: int


def run_time_of(name: str) -> float:
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in name else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(name, fmt).replace(tzinfo=UTC).timestamp()


@dataclass
class _Listing:
    mtime_ns: int
    subdirs: tuple[str, ...]
    newest_run: str | None  # newest run-time subfolder name, if this is a run-name folder


class ValidationStore:
    """Finds the newest run per suite; not thread-safe, used from one thread at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, _Listing] = {}
        self._results: dict[tuple[Path, tuple[tuple[str, int], ...]], SuiteResult] = {}
        self._last: dict[str, SuiteResult] = {}
        self.listed = 0  # directories listed so far (for the cache's tests)
        self.parsed = 0  # result files parsed so far
        # Suites asked for by the last scan that have no run in the store.
        self.missing: tuple[str, ...] = ()

    def _listing(self, path: Path) -> _Listing:
        mtime = path.stat().st_mtime_ns
        cached = self._listings.get(path)
        # A folder changed within the last seconds may change again within the
        # same mtime tick (coarse on some file systems): list it again then.
        settled = time.time_ns() - mtime > RACY_NS
        if cached is not None and cached.mtime_ns == mtime and settled:
            return cached
        self.listed += 1
        with os.scandir(path) as entries:
            subdirs = tuple(e.name for e in entries if e.is_dir(follow_symlinks=False))
        runs = [name for name in subdirs if RUN_TIME.match(name)]
        listing = _Listing(mtime, subdirs, max(runs) if runs else None)
        self._listings[path] = listing
        return listing

    def newest_runs(self) -> dict[str, Path]:
        """Suite name (from the folders) -> folder of its newest run."""
        if not self.root.is_dir():
            raise ValidationStoreError(f"{self.root}: validations directory is missing")
        newest: dict[str, tuple[str, Path]] = {}
        stack: list[tuple[Path, tuple[str, ...]]] = [(self.root, ())]
        seen: set[Path] = set()
        while stack:
            folder, parts = stack.pop()
            seen.add(folder)
            for name in self._listing(folder).subdirs:
                child = folder / name
                listing = self._listing(child)
                if listing.newest_run is not None and parts:
                    # child is a run-name folder of the suite at ``folder``.
                    suite = ".".join(parts)
                    candidate = (listing.newest_run, child / listing.newest_run)
                    if suite not in newest or candidate[0] > newest[suite][0]:
                        newest[suite] = candidate
                elif listing.newest_run is None:
                    stack.append((child, (*parts, name)))
        # Forget folders that are gone (deleted suites) so the cache stays bounded.
        for path in [p for p in self._listings if p not in seen and p.parent not in seen]:
            del self._listings[path]
        return {suite: path for suite, (_, path) in newest.items()}

    def result(self, suite: str, run_dir: Path) -> SuiteResult:
        files = sorted(p for p in run_dir.iterdir() if p.suffix == ".json")
        key = (run_dir, tuple((p.name, p.stat().st_mtime_ns) for p in files))
        cached = self._results.get(key)
        if cached is not None:
            return cached
        if not files:
            # GX creates the run folder first and writes the file into it right after.
            if suite in self._last:
                return self._last[suite]
            raise ValidationStoreError(f"{run_dir}: newest run of {suite!r} holds no result file")
        success = True
        unsuccessful = evaluated = 0
        name = suite
        run_time = run_time_of(run_dir.name)
        for path in files:
            self.parsed += 1
            data = _read_result(path)
            stats = data.get("statistics") or {}
            success = success and data.get("success") is True
            unsuccessful += int(stats.get("unsuccessful_expectations") or 0)
            evaluated += int(stats.get("evaluated_expectations") or 0)
            meta = data.get("meta") or {}
            # 1.x: suite_name; 0.x: meta.expectation_suite_name.
            name = str(data.get("suite_name") or meta.get("expectation_suite_name") or name)
        result = SuiteResult(name, success, run_time, unsuccessful, evaluated, len(files))
        # One entry per suite: the older run's entry is of no more use.
        for old in [k for k in self._results if k[0].parent.parent == run_dir.parent.parent]:
            del self._results[old]
        self._results[key] = result
        self._last[suite] = result
        return result

    def scan(self, suites: Sequence[str] = ()) -> list[SuiteResult]:
        runs = self.newest_runs()
        wanted = set(suites)
        self.missing = tuple(sorted(wanted - set(runs)))
        return [
            self.result(suite, path)
            for suite, path in sorted(runs.items())
            if not wanted or suite in wanted
        ]


def _read_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValidationStoreError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValidationStoreError(
            f"{path}: validation result is truncated or not JSON ({exc})"
        ) from exc
    if not isinstance(data, dict) or "success" not in data or "statistics" not in data:
        raise ValidationStoreError(f"{path}: not a GX validation result (no success/statistics)")
    return data


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
