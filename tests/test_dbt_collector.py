"""dbt source freshness from sources.json as dbt 1.5-1.7 and dbt 1.8+ write it.

The fixtures under tests/data/dbt follow the v3 sources schema as observed
(../shared/notes/dbt-gx-facts.md): dbt_1_7 writes its runtime error as an entry
without max_loaded_at; dbt_1_12 leaves it out and only manifest.json declares it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from feedguard.exporter.collectors.base import Deadline
from feedguard.exporter.collectors.dbt import ArtifactError, DbtCollector, DbtSettings

from .support.families import Samples, samples, series, value

DATA = Path(__file__).parent / "data" / "dbt"
SRC = "iceberg_external"
STATUS = "external_dbt_source_freshness_status"
LOADED = "external_dbt_source_max_loaded_at_timestamp"


def target(tmp_path: Path, generation: str) -> Path:
    directory = tmp_path / "target"
    shutil.copytree(DATA / generation, directory)
    return directory


async def collect(collector: DbtCollector) -> Samples:
    return samples(await collector.collect(Deadline.in_seconds(5)))


def statuses(found: Samples, table: str) -> dict[str, float]:
    return {
        dict(labels)["status"]: v
        for labels, v in series(found, STATUS).items()
        if dict(labels)["table"] == table
    }


@pytest.mark.parametrize("generation", ["dbt_1_7", "dbt_1_12"])
async def test_pass_warn_error_and_runtime_error(tmp_path: Path, generation: str) -> None:
    directory = target(tmp_path, generation)
    found = await collect(DbtCollector(DbtSettings(sources_json=str(directory / "sources.json"))))

    expected = {
        "eia_rto_region_data": "pass",
        "isone_lmp_realtime": "warn",
        "miso_lmp_realtime": "error",
        "noaa_ghcnd_daily": "runtime error",
    }
    for table, status in expected.items():
        assert statuses(found, table) == {
            s: (1.0 if s == status else 0.0) for s in ("pass", "warn", "error", "runtime error")
        }, table
    assert (
        value(found, LOADED, source=SRC, table="eia_rto_region_data") == 1795650900.0
    )  # 2026-11-25T23:55:00+00:00
    assert (
        value(found, LOADED, source=SRC, table="miso_lmp_realtime") == 1795647600.0
    )  # 2026-11-25T23:00:00+00:00
    # A runtime error has no timestamp.
    assert value(found, LOADED, source=SRC, table="noaa_ghcnd_daily") is None
    # Sources without a freshness policy, or disabled, are not results.
    tables = {dict(labels)["table"] for labels in series(found, STATUS)}
    assert tables == set(expected)
    assert series(found, "external_dbt_sources_generated_timestamp")


async def test_runtime_error_needs_the_manifest_of_the_same_invocation(tmp_path: Path) -> None:
    directory = target(tmp_path, "dbt_1_12")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["metadata"]["invocation_id"] = "0b8e7f6a-later-dbt-build"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    collector = DbtCollector(DbtSettings(sources_json=str(directory / "sources.json")))
    with capture_logs() as logs:
        found = await collect(collector)
    assert statuses(found, "noaa_ghcnd_daily") == {}
    assert statuses(found, "eia_rto_region_data")["pass"] == 1.0
    assert any("not inferred" in entry["event"] for entry in logs)


async def test_without_a_manifest_only_written_results_count(tmp_path: Path) -> None:
    directory = target(tmp_path, "dbt_1_12")
    (directory / "manifest.json").unlink()
    found = await collect(DbtCollector(DbtSettings(sources_json=str(directory / "sources.json"))))
    assert statuses(found, "noaa_ghcnd_daily") == {}
    assert statuses(found, "miso_lmp_realtime")["error"] == 1.0


async def test_configured_manifest_must_exist(tmp_path: Path) -> None:
    directory = target(tmp_path, "dbt_1_12")
    settings = DbtSettings(
        sources_json=str(directory / "sources.json"),
        manifest_json=str(tmp_path / "elsewhere" / "manifest.json"),
    )
    with pytest.raises(
        ArtifactError, match=r"elsewhere/manifest.json: dbt manifest.json is missing"
    ):
        await collect(DbtCollector(settings))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", r"sources.json: dbt sources.json is missing"),
        ("truncated", r"sources.json: dbt sources.json is truncated or not JSON"),
        ("version", r"unknown dbt_schema_version 'https://schemas.getdbt.com/dbt/sources/v4.json'"),
        ("status", r"results\[1\].status 'stale' is not one of pass, warn, error, runtime error"),
    ],
)
async def test_unusable_artifact_is_a_clear_error(
    tmp_path: Path, damage: str, message: str
) -> None:
    directory = target(tmp_path, "dbt_1_7")
    path = directory / "sources.json"
    text = path.read_text()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "version":
        path.write_text(text.replace("sources/v3.json", "sources/v4.json"))
    else:
        data = json.loads(text)
        data["results"][1]["status"] = "stale"
        path.write_text(json.dumps(data))
    collector = DbtCollector(DbtSettings(sources_json=str(path)))
    with pytest.raises(ArtifactError, match=message):
        await collect(collector)
    # The same broken file is not parsed again, and fails the same way.
    with pytest.raises(ArtifactError, match=message):
        await collect(collector)
    assert collector.reads == 1


async def test_rereads_only_when_the_artifact_changes(tmp_path: Path) -> None:
    directory = target(tmp_path, "dbt_1_12")
    path = directory / "sources.json"
    collector = DbtCollector(DbtSettings(sources_json=str(path)))
    await collect(collector)
    await collect(collector)
    assert collector.reads == 1

    data = json.loads(path.read_text())
    data["results"][1]["status"] = "pass"
    path.write_text(json.dumps(data))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    found = await collect(collector)
    assert collector.reads == 2
    assert statuses(found, "isone_lmp_realtime")["pass"] == 1.0

    # A broken rewrite takes the collector down; a repaired one brings it back.
    path.write_text("{")
    with pytest.raises(ArtifactError):
        await collect(collector)
    path.write_text(json.dumps(data))
    assert statuses(await collect(collector), "isone_lmp_realtime")["pass"] == 1.0
