"""Great Expectations suite results from the validations store of a file-mode context.

GX (1.x and 0.x alike) stores every validation result at
``<validations>/<suite, dots as folders>/<run_name>/<run time>/<batch>.json``
with run times named ``YYYYMMDDTHHMMSS.ffffffZ``, which sort in time order. The
newest run of a suite is therefore found from directory names alone; each
directory's listing is cached by its mtime (a new run changes the mtime of the
run-name folder it lands in), and only the newest run's result files are read.

Shared by the exporter's quality collector (metrics) and the responder's
verified recovery (a suite's result newer than a backfill).  Blocking file I/O:
callers run it in a worker thread.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RACY_NS = 2_000_000_000
RUN_TIME = re.compile(r"^\d{8}T\d{6}(\.\d{1,6})?Z$")
# Run-name folders holding one settled run, stat'ed per scan (in turn).
COLD_PER_SCAN = 64


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


def _settled(mtime_ns: int) -> bool:
    # A folder changed within the last seconds may change again within the
    # same mtime tick (coarse on some file systems): look at it again then.
    return time.time_ns() - mtime_ns > RACY_NS


def _recompute_newest(suite: _Suite) -> None:
    runs = [(x.newest_run, n) for n, x in suite.names.items() if x.newest_run is not None]
    suite.newest = max(runs) if runs else None


def run_time_of(name: str) -> float:
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in name else "%Y%m%dT%H%M%SZ"
    return datetime.strptime(name, fmt).replace(tzinfo=UTC).timestamp()


@dataclass
class _Listing:
    mtime_ns: int
    subdirs: tuple[str, ...]
    newest_run: str | None  # newest run-time subfolder name, if this is a run-name folder
    runs: int  # run-time subfolders


@dataclass
class _Suite:
    """A suite folder's run-name folders, kept so a scan stats few of them.

    ``hot``: names stat'ed every scan (used more than once, without a run yet,
    changed recently, or holding the newest run). The others hold one old run
    each (GX 0.x names each run) and are stat'ed ``COLD_PER_SCAN`` at a time in
    turn, so a scan's cost does not grow with the number of run names.
    """

    mtime_ns: int
    names: dict[str, _Listing]
    hot: set[str]
    cold: list[str]
    cursor: int = 0
    newest: tuple[str, str] | None = None  # (run time, run name)


class ValidationStore:
    """Finds the newest run per suite; not thread-safe, used from one thread at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, _Listing] = {}
        self._suites: dict[Path, _Suite] = {}
        self._results: dict[tuple[Path, tuple[tuple[str, int], ...]], SuiteResult] = {}
        self._last: dict[str, SuiteResult] = {}
        self.listed = 0  # directories listed so far (for the cache's tests)
        self.stats = 0  # directories stat'ed so far (the scan cost, for tests and bench)
        self.parsed = 0  # result files parsed so far
        # Suites asked for by the last scan that have no run in the store.
        self.missing: tuple[str, ...] = ()

    def _list(self, path: Path, cached: _Listing | None) -> _Listing:
        """Stat ``path``; list it again only when its mtime moved (or may still move)."""
        self.stats += 1
        mtime = path.stat().st_mtime_ns
        if cached is not None and cached.mtime_ns == mtime and _settled(mtime):
            return cached
        self.listed += 1
        with os.scandir(path) as entries:
            subdirs = tuple(e.name for e in entries if e.is_dir(follow_symlinks=False))
        runs = [name for name in subdirs if RUN_TIME.match(name)]
        return _Listing(mtime, subdirs, max(runs) if runs else None, len(runs))

    def _listing(self, path: Path) -> _Listing:
        listing = self._list(path, self._listings.get(path))
        self._listings[path] = listing
        return listing

    def _refresh_name(self, suite: _Suite, folder: Path, name: str) -> None:
        old = suite.names.get(name)
        try:
            listing = self._list(folder / name, old)
        except FileNotFoundError:
            self._drop_name(suite, name)
            return
        if listing is not old:
            self._adopt(suite, name, listing)

    def _adopt(self, suite: _Suite, name: str, listing: _Listing) -> None:
        suite.names[name] = listing
        is_hot = listing.runs != 1 or not _settled(listing.mtime_ns)
        if is_hot:
            suite.hot.add(name)
        elif name in suite.hot:
            suite.hot.discard(name)
            suite.cold.append(name)
        if listing.newest_run is not None and (
            suite.newest is None or listing.newest_run > suite.newest[0]
        ):
            suite.newest = (listing.newest_run, name)
        elif suite.newest is not None and suite.newest[1] == name:
            _recompute_newest(suite)  # runs of the newest were deleted

    def _drop_name(self, suite: _Suite, name: str) -> None:
        suite.names.pop(name, None)
        suite.hot.discard(name)
        if name in suite.cold:
            suite.cold.remove(name)
        if suite.newest is not None and suite.newest[1] == name:
            _recompute_newest(suite)

    def _scan_suite(self, folder: Path, suite: _Suite) -> list[str]:
        """Bring a known suite folder up to date; returns names that are not run names."""
        self.stats += 1
        mtime = folder.stat().st_mtime_ns
        if mtime != suite.mtime_ns or not _settled(mtime):
            self.listed += 1
            with os.scandir(folder) as entries:
                now = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
            for gone in [n for n in suite.names if n not in now]:
                self._drop_name(suite, gone)
            for new in sorted(now - suite.names.keys()):
                suite.hot.add(new)  # refreshed just below
            suite.mtime_ns = mtime
        checked = set(suite.hot)
        if suite.newest is not None:
            checked.add(suite.newest[1])
        if suite.cold:
            for _ in range(min(COLD_PER_SCAN, len(suite.cold))):
                suite.cursor %= len(suite.cold)
                checked.add(suite.cold[suite.cursor])
                suite.cursor += 1
        for name in checked:
            if name in suite.hot or name in suite.names:
                self._refresh_name(suite, folder, name)
        return [n for n in suite.hot if n in suite.names and suite.names[n].newest_run is None]

    def newest_runs(self) -> dict[str, Path]:
        """Suite name (from the folders) -> folder of its newest run."""
        if not self.root.is_dir():
            raise ValidationStoreError(f"{self.root}: validations directory is missing")
        newest: dict[str, Path] = {}
        stack: list[tuple[Path, tuple[str, ...]]] = [(self.root, ())]
        seen: set[Path] = set()
        while stack:
            folder, parts = stack.pop()
            seen.add(folder)
            suite = self._suites.get(folder)
            if suite is None:
                names = self._listing(folder).subdirs
                children = {name: self._listing(folder / name) for name in names}
                if parts and any(c.newest_run is not None for c in children.values()):
                    # folder is a suite folder: its children are run-name folders.
                    suite = _Suite(self._listings[folder].mtime_ns, {}, set(names), [])
                    self._suites[folder] = suite
                    for name in names:
                        self._adopt(suite, name, self._listings.pop(folder / name))
                    nested = [n for n in names if children[n].newest_run is None]
                else:
                    nested = list(names)
            else:
                nested = self._scan_suite(folder, suite)
            if suite is not None and suite.newest is not None:
                newest[".".join(parts)] = folder / suite.newest[1] / suite.newest[0]
            stack.extend((folder / name, (*parts, name)) for name in nested)
        # Forget folders that are gone (deleted suites) so the caches stay bounded.
        for path in [p for p in self._listings if p not in seen and p.parent not in seen]:
            del self._listings[path]
        for path in [p for p in self._suites if p not in seen]:
            del self._suites[path]
        return newest

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


__all__ = ["SuiteResult", "ValidationStore", "ValidationStoreError", "run_time_of"]
