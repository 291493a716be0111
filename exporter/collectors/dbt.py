"""dbt source freshness from ``target/sources.json`` (and ``manifest.json`` for dbt 1.8+).

dbt 1.5-1.7 write a runtime error as an entry with ``status: "runtime error"``
and no ``max_loaded_at``; dbt 1.8+ leave such a source out of ``sources.json``
altogether, so a source that the manifest of the same invocation declares with
a freshness policy, and that has no result, is reported as a runtime error.
The artifacts are re-read only when their size or mtime changes, off the event
loop; a missing, truncated or unknown-version artifact makes the collector fail
with a message naming the file and the problem.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.log import get_logger
from feedguard.core.schema import field

from .base import Deadline

log = get_logger(__name__)

SOURCES_SCHEMAS = frozenset({"https://schemas.getdbt.com/dbt/sources/v3.json"})
STATUSES = ("pass", "warn", "error", "runtime error")


@dataclass(frozen=True)
class DbtSettings:
    enabled: bool = False
    sources_json: str = field("target/sources.json", doc="dbt source freshness output")
    # Default: manifest.json next to sources.json, when there is one.
    manifest_json: str | None = None


class ArtifactError(Exception):
    """An artifact that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class SourceResult:
    source: str
    table: str
    status: str
    max_loaded_at: float | None


@dataclass(frozen=True)
class Freshness:
    results: tuple[SourceResult, ...]
    generated_at: float | None


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


def split_unique_id(unique_id: str) -> tuple[str, str]:
    """``source.<package>.<source>.<table>`` -> (source, table)."""
    parts = unique_id.split(".", 3)
    if len(parts) != 4 or parts[0] != "source":
        raise ValueError(unique_id)
    return parts[2], parts[3]


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


def parse_sources(
    path: Path, data: Any, manifest_path: Path | None, manifest: Any
) -> tuple[Freshness, str | None]:
    """Results from parsed artifacts, and a note when runtime errors cannot be inferred."""
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise ArtifactError(f"{path}: not a dbt sources.json (no metadata object)")
    version = data["metadata"].get("dbt_schema_version")
    if version not in SOURCES_SCHEMAS:
        known = ", ".join(sorted(SOURCES_SCHEMAS))
        raise ArtifactError(
            f"{path}: unknown dbt_schema_version {version!r} (this exporter reads {known})"
        )
    results = data.get("results")
    if not isinstance(results, list):
        raise ArtifactError(f"{path}: 'results' is not a list")
    names: dict[str, tuple[str, str]] = {}
    declared: set[str] = set()
    note: str | None = None
    if isinstance(manifest, dict):
        sources = manifest.get("sources")
        if not isinstance(sources, dict):
            raise ArtifactError(f"{manifest_path}: manifest has no 'sources' mapping")
        for unique_id, node in sources.items():
            if isinstance(node, dict) and "source_name" in node and "name" in node:
                names[unique_id] = (str(node["source_name"]), str(node["name"]))
                if _has_freshness(node):
                    declared.add(unique_id)
        ours = data["metadata"].get("invocation_id")
        theirs = (manifest.get("metadata") or {}).get("invocation_id")
        if ours and theirs and ours != theirs:
            # A later dbt command rewrote the manifest: its sources need not be
            # the ones this freshness run was asked to check.
            declared = set()
            note = "manifest.json is from another dbt invocation than sources.json"
    found: list[SourceResult] = []
    seen: set[str] = set()
    for index, item in enumerate(results):
        if not isinstance(item, dict) or not isinstance(item.get("unique_id"), str):
            raise ArtifactError(f"{path}: results[{index}] has no unique_id")
        unique_id = item["unique_id"]
        try:
            source, table = names.get(unique_id) or split_unique_id(unique_id)
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
        seen.add(unique_id)
        found.append(SourceResult(source, table, status, loaded))
    for unique_id in sorted(declared - seen):
        source, table = names[unique_id]
        found.append(SourceResult(source, table, "runtime error", None))
    generated = _time(data["metadata"].get("generated_at"))
    return Freshness(tuple(found), generated), note


class DbtCollector:
    name = "dbt"

    def __init__(self, settings: DbtSettings) -> None:
        self._sources = Path(settings.sources_json)
        self._manifest_setting = Path(settings.manifest_json) if settings.manifest_json else None
        self._key: tuple[Any, ...] | None = None
        self._cached: Freshness | ArtifactError | None = None
        self._last_note: str | None = None
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
            freshness, note = parse_sources(self._sources, data, manifest_path, manifest)
        except ArtifactError as exc:
            self._key, self._cached = key, exc
            raise
        if note != self._last_note:
            self._last_note = note
            if note:
                log.warning("dbt runtime errors of dbt 1.8+ not inferred", reason=note)
        self._key, self._cached = key, freshness
        return freshness

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        freshness = await asyncio.to_thread(self._load)
        loaded = GaugeMetricFamily(
            "external_dbt_source_max_loaded_at_timestamp",
            "max_loaded_at of a dbt source table from sources.json (epoch seconds).",
            labels=["source", "table"],
        )
        status = GaugeMetricFamily(
            "external_dbt_source_freshness_status",
            "dbt source freshness status: 1 for the current status, 0 for the others.",
            labels=["source", "table", "status"],
        )
        generated = GaugeMetricFamily(
            "external_dbt_sources_generated_timestamp",
            "When dbt wrote sources.json (metadata.generated_at, epoch seconds).",
        )
        for result in freshness.results:
            if result.max_loaded_at is not None:
                loaded.add_metric([result.source, result.table], result.max_loaded_at)
            for candidate in STATUSES:
                status.add_metric(
                    [result.source, result.table, candidate],
                    1.0 if candidate == result.status else 0.0,
                )
        if freshness.generated_at is not None:
            generated.add_metric([], freshness.generated_at)
        return [loaded, status, generated]


__all__ = ["ArtifactError", "DbtCollector", "DbtSettings"]
