"""dbt source freshness from ``target/sources.json`` (and ``manifest.json`` for dbt 1.8+).

dbt 1.5-1.7 write a runtime error as an entry with ``status: "runtime error"``
and no ``max_loaded_at``; dbt 1.8+ leave such a source out of ``sources.json``
altogether. Nothing in either artifact records which sources an invocation
was asked to check (``--select`` is written nowhere; the manifest declares
every source), so a source missing from a dbt 1.8+ result is a runtime error
only when the configuration says the freshness run covers it
(``checked_sources``) and the manifest of the same invocation declares it
with a freshness policy. Any other missing source keeps its last known
result, with the time it was taken (``..._snapshotted_timestamp``); when
runtime errors cannot be seen at all, ``external_dbt_runtime_errors_visible``
is 0 and the reason is logged once.

The artifacts are re-read only when their size or mtime changes, off the event
loop; a missing, truncated or unknown-version artifact makes the collector fail
with a message naming the file and the problem.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from pydantic import Field

from feedguard.core.dbt_results import artifact_metadata
from feedguard.core.log import get_logger
from feedguard.core.schema import ConfigModel, Items

from .base import Deadline

log = get_logger(__name__)

SOURCES_SCHEMAS = frozenset({"https://schemas.getdbt.com/dbt/sources/v3.json"})
STATUSES = ("pass", "warn", "error", "runtime error")
LABELS = ["source", "table", "package", "unique_id"]


class DbtSettings(ConfigModel):
    enabled: bool = False
    sources_json: str = Field("target/sources.json", description="dbt source freshness output")
    # Default: manifest.json next to sources.json, when there is one.
    manifest_json: str | None = None
    # What `dbt source freshness` is run on (its --select), as patterns over
    # `source_name.table` or `package.source_name.table` ("*" for every source).
    # Empty: not known, so dbt 1.8+ runtime errors cannot be told from sources
    # that run did not check.
    checked_sources: Items[str] = ()


class ArtifactError(Exception):
    """An artifact that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class SourceResult:
    unique_id: str
    package: str
    source: str
    table: str
    status: str
    max_loaded_at: float | None
    # When dbt took this result (snapshotted_at, else the file's generated_at).
    checked_at: float | None


@dataclass(frozen=True)
class Freshness:
    results: tuple[SourceResult, ...]
    generated_at: float | None
    # Why runtime errors of this invocation cannot be seen, or None when they can.
    blind: str | None = None
    # Every source the manifest declares (None without a manifest).
    declared: frozenset[str] | None = None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: {what} is missing") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ArtifactError(f"{path}: {what} is truncated or not JSON ({exc})") from exc


def _time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def split_unique_id(unique_id: str) -> tuple[str, str, str]:
    """``source.<package>.<source>.<table>`` -> (package, source, table)."""
    parts = unique_id.split(".", 3)
    if len(parts) != 4 or parts[0] != "source":
        raise ValueError(unique_id)
    return parts[1], parts[2], parts[3]


def writes_runtime_errors(dbt_version: Any) -> bool:
    """dbt 1.5-1.7 write runtime errors into sources.json; 1.8+ (or unknown) do not."""
    match = re.match(r"(\d+)\.(\d+)", str(dbt_version or ""))
    return match is not None and (int(match[1]), int(match[2])) < (1, 8)


def _has_freshness(node: Mapping[str, Any]) -> bool:
    """Whether ``dbt source freshness`` checks this source (a warn/error criterion set)."""
    if node.get("config", {}).get("enabled") is False:
        return False
    policy = node.get("freshness") or {}
    for key in ("warn_after", "error_after"):
        criterion = policy.get(key) or {}
        if criterion.get("count") is not None and criterion.get("period") is not None:
            return True
    return False


def is_checked(patterns: Sequence[str], package: str, source: str, table: str) -> bool:
    short, full = f"{source}.{table}", f"{package}.{source}.{table}"
    return any(fnmatchcase(short, p) or fnmatchcase(full, p) for p in patterns)


def _names(
    manifest_path: Path | None, manifest: Any
) -> tuple[dict[str, tuple[str, str, str]], set[str]]:
    """unique_id -> (package, source, table) from the manifest, and those with a policy."""
    names: dict[str, tuple[str, str, str]] = {}
    declared: set[str] = set()
    if not isinstance(manifest, dict):
        return names, declared
    sources = manifest.get("sources")
    if not isinstance(sources, dict):
        raise ArtifactError(f"{manifest_path}: manifest has no 'sources' mapping")
    for unique_id, node in sources.items():
        if isinstance(node, dict) and "source_name" in node and "name" in node:
            package = str(node.get("package_name") or unique_id.split(".")[1])
            names[unique_id] = (package, str(node["source_name"]), str(node["name"]))
            if _has_freshness(node):
                declared.add(unique_id)
    return names, declared


def parse_sources(
    path: Path,
    data: Any,
    manifest_path: Path | None,
    manifest: Any,
    checked: Sequence[str] = (),
) -> Freshness:
    """Results from parsed artifacts, saying when runtime errors cannot be seen."""
    metadata = artifact_metadata(path, data, "sources.json", SOURCES_SCHEMAS, ArtifactError)
    results = data.get("results")
    if not isinstance(results, list):
        raise ArtifactError(f"{path}: 'results' is not a list")
    generated = _time(metadata.get("generated_at"))
    names, declared = _names(manifest_path, manifest)
    blind: str | None = None
    if writes_runtime_errors(metadata.get("dbt_version")):
        declared = set()  # written as entries: nothing to infer
    elif manifest is None:
        blind = "no manifest.json beside sources.json (dbt 1.8+ leaves runtime errors out)"
    elif (ours := metadata.get("invocation_id")) and ours != (
        (manifest.get("metadata") or {}).get("invocation_id")
    ):
        # A later dbt command rewrote the manifest: its sources need not be
        # the ones this freshness run was asked to check.
        blind = "manifest.json is from another dbt invocation than sources.json"
    elif not checked:
        blind = "dbt.checked_sources is not set (which sources the freshness run checks)"
    if blind:
        declared = set()
    found: list[SourceResult] = []
    seen: set[str] = set()
    for index, item in enumerate(results):
        if not isinstance(item, dict) or not isinstance(item.get("unique_id"), str):
            raise ArtifactError(f"{path}: results[{index}] has no unique_id")
        unique_id = item["unique_id"]
        try:
            package, source, table = names.get(unique_id) or split_unique_id(unique_id)
        except ValueError:
            raise ArtifactError(
                f"{path}: results[{index}].unique_id {unique_id!r} is not source.<pkg>.<src>.<tbl>"
            ) from None
        status = item.get("status")
        if status not in STATUSES:
            raise ArtifactError(
                f"{path}: results[{index}].status {status!r} is not one of {', '.join(STATUSES)}"
            )
        loaded = None if status == "runtime error" else _time(item.get("max_loaded_at"))
        checked_at = _time(item.get("snapshotted_at")) or generated
        seen.add(unique_id)
        found.append(SourceResult(unique_id, package, source, table, status, loaded, checked_at))
    for unique_id in sorted(declared - seen):
        package, source, table = names[unique_id]
        if is_checked(checked, package, source, table):
            found.append(
                SourceResult(unique_id, package, source, table, "runtime error", None, generated)
            )
    in_project = frozenset(names) if manifest is not None else None
    return Freshness(tuple(found), generated, blind, in_project)


class DbtCollector:
    name = "dbt"

    def __init__(self, settings: DbtSettings) -> None:
        self._sources = Path(settings.sources_json)
        self._manifest_setting = Path(settings.manifest_json) if settings.manifest_json else None
        self._checked = tuple(settings.checked_sources)
        self._key: tuple[Any, ...] | None = None
        self._cached: Freshness | ArtifactError | None = None
        self._last_blind: str | None = None
        # Last known result of every source seen in this process: a later
        # sources.json that did not check a source does not make it vanish.
        self._known: dict[str, SourceResult] = {}
        self.reads = 0  # artifact parses so far (the cache's effect, for tests and logs)

    def _manifest_path(self) -> Path:
        return self._manifest_setting or self._sources.with_name("manifest.json")

    def _load(self) -> Freshness:
        """Runs in a worker thread: stat both files, re-parse only on change."""
        manifest_path = self._manifest_path()
        key = (_stat(self._sources), _stat(manifest_path))
        if key == self._key and self._cached is not None:
            if isinstance(self._cached, ArtifactError):
                raise self._cached
            return self._cached
        self.reads += 1
        try:
            data = _read_json(self._sources, "dbt sources.json")
            manifest = None
            if key[1] is not None:
                manifest = _read_json(manifest_path, "dbt manifest.json")
            elif self._manifest_setting is not None:
                raise ArtifactError(f"{manifest_path}: dbt manifest.json is missing")
            freshness = parse_sources(self._sources, data, manifest_path, manifest, self._checked)
        except ArtifactError as exc:
            self._key, self._cached = key, exc
            raise
        if freshness.blind != self._last_blind:
            self._last_blind = freshness.blind
            if freshness.blind:
                log.warning(
                    "dbt runtime errors cannot be seen",
                    reason=freshness.blind,
                    sources_json=str(self._sources),
                )
        if freshness.declared is not None:
            # A source removed from the project has no last known state any more.
            for gone in [u for u in self._known if u not in freshness.declared]:
                del self._known[gone]
        for result in freshness.results:
            self._known[result.unique_id] = result
        self._key, self._cached = key, freshness
        return freshness

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        freshness = await asyncio.to_thread(self._load)
        loaded = GaugeMetricFamily(
            "external_dbt_source_max_loaded_at_timestamp",
            "max_loaded_at of a dbt source table from sources.json (epoch seconds).",
            labels=LABELS,
        )
        status = GaugeMetricFamily(
            "external_dbt_source_freshness_status",
            "dbt source freshness status: 1 for the current status, 0 for the others.",
            labels=[*LABELS, "status"],
        )
        checked = GaugeMetricFamily(
            "external_dbt_source_snapshotted_timestamp",
            "When dbt took the source's result shown (epoch seconds); older than"
            " sources.json when the newest freshness run did not check the source.",
            labels=LABELS,
        )
        generated = GaugeMetricFamily(
            "external_dbt_sources_generated_timestamp",
            "When dbt wrote sources.json (metadata.generated_at, epoch seconds).",
        )
        visible = GaugeMetricFamily(
            "external_dbt_runtime_errors_visible",
            "1 when a failed freshness query of the newest sources.json shows as"
            " 'runtime error'; 0 when it cannot (the log says why).",
        )
        for result in sorted(self._known.values(), key=lambda r: r.unique_id):
            labels = [result.source, result.table, result.package, result.unique_id]
            if result.max_loaded_at is not None:
                loaded.add_metric(labels, result.max_loaded_at)
            if result.checked_at is not None:
                checked.add_metric(labels, result.checked_at)
            for candidate in STATUSES:
                status.add_metric([*labels, candidate], 1.0 if candidate == result.status else 0.0)
        if freshness.generated_at is not None:
            generated.add_metric([], freshness.generated_at)
        visible.add_metric([], 0.0 if freshness.blind else 1.0)
        return [loaded, status, checked, generated, visible]


__all__ = ["ArtifactError", "DbtCollector", "DbtSettings"]
