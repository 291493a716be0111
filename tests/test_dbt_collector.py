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
VISIBLE = "external_dbt_runtime_errors_visible"


def target(tmp_path: Path, generation: str) -> Path:
    directory = tmp_path / "target"
    shutil.copytree(DATA / generation, directory)
    return directory


async def collect(collector: DbtCollector) -> Samples:
    return samples(await collector.collect(Deadline.in_seconds(5)))


def ids(table: str) -> dict[str, str]:
    package = "energy_analytics"
    return {
        "source": SRC,
        "table": table,
        "package": package,
        "unique_id": f"source.{package}.{SRC}.{table}",
    }


def statuses(found: Samples, table: str) -> dict[str, float]:
    return {
        dict(labels)["status"]: v
        for labels, v in series(found, STATUS).items()
        if dict(labels)["table"] == table
    }


@pytest.mark.parametrize("generation", ["dbt_1_7", "dbt_1_12"])
async def test_pass_warn_error_and_runtime_error(tmp_path: Path, generation: str) -> None:
    directory = target(tmp_path, generation)
    settings = DbtSettings(sources_json=str(directory / "sources.json"), checked_sources=("*",))
    found = await collect(DbtCollector(settings))

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
        value(found, LOADED, **ids("eia_rto_region_data")) == 1795650900.0
    )  # 2026-11-25T23:55:00+00:00
    assert (
        value(found, LOADED, **ids("miso_lmp_realtime")) == 1795647600.0
    )  # 2026-11-25T23:00:00+00:00
    # A runtime error has no timestamp.
    assert value(found, LOADED, **ids("noaa_ghcnd_daily")) is None
    # Sources without a freshness policy, or disabled, are not results.
    tables = {dict(labels)["table"] for labels in series(found, STATUS)}
    assert tables == set(expected)
    assert series(found, "external_dbt_sources_generated_timestamp")
    assert value(found, VISIBLE) == 1.0


async def test_runtime_error_needs_the_manifest_of_the_same_invocation(tmp_path: Path) -> None:
    directory = target(tmp_path, "dbt_1_12")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["metadata"]["invocation_id"] = "0b8e7f6a-later-dbt-build"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    settings = DbtSettings(sources_json=str(directory / "sources.json"), checked_sources=("*",))
    with capture_logs() as logs:
        found = await collect(DbtCollector(settings))
    assert statuses(found, "noaa_ghcnd_daily") == {}
    assert statuses(found, "eia_rto_region_data")["pass"] == 1.0
    assert value(found, VISIBLE) == 0.0
    assert [e["reason"] for e in logs if e["event"] == "dbt runtime errors cannot be seen"] == [
        "manifest.json is from another dbt invocation than sources.json"
    ]


async def test_without_a_manifest_runtime_errors_are_blind_and_say_so_once(
    tmp_path: Path,
) -> None:
    directory = target(tmp_path, "dbt_1_12")
    (directory / "manifest.json").unlink()
    settings = DbtSettings(sources_json=str(directory / "sources.json"), checked_sources=("*",))
    collector = DbtCollector(settings)
    with capture_logs() as logs:
        found = await collect(collector)
        again = await collect(collector)
    assert statuses(found, "noaa_ghcnd_daily") == {}
    assert statuses(found, "miso_lmp_realtime")["error"] == 1.0
    assert value(found, VISIBLE) == 0.0
    assert value(again, VISIBLE) == 0.0
    blind = [e for e in logs if e["event"] == "dbt runtime errors cannot be seen"]
    assert len(blind) == 1
    assert blind[0]["reason"].startswith("no manifest.json beside sources.json")


async def test_dbt_1_7_writes_its_runtime_errors_so_a_manifest_adds_none(tmp_path: Path) -> None:
    # dbt 1.7 writes every result it has; a source it did not check (a --select
    # run) is absent from sources.json even though the manifest declares it.
    directory = target(tmp_path, "dbt_1_7")
    shutil.copy(DATA / "dbt_1_12" / "manifest.json", directory / "manifest.json")
    data = json.loads((directory / "sources.json").read_text())
    data["results"] = [r for r in data["results"] if "miso" not in r["unique_id"]]
    (directory / "sources.json").write_text(json.dumps(data))
    settings = DbtSettings(sources_json=str(directory / "sources.json"), checked_sources=("*",))
    found = await collect(DbtCollector(settings))
    assert statuses(found, "miso_lmp_realtime") == {}
    assert statuses(found, "noaa_ghcnd_daily")["runtime error"] == 1.0
    assert value(found, VISIBLE) == 1.0


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
        (
            "version",
            r"metadata.dbt_schema_version 'https://schemas.getdbt.com/dbt/sources/v4.json' is not",
        ),
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


MULTI = DATA / "dbt_1_12_multi_package"  # real dbt 1.12.6 runs; its README says how


def run_dir(tmp_path: Path, run: str) -> Path:
    directory = tmp_path / "target"
    directory.mkdir(exist_ok=True)
    for name in ("sources.json", "manifest.json"):
        shutil.copy(MULTI / run / name, directory / name)
        # Each copy is a new artifact to the collector's stat-based cache.
        stat = (directory / name).stat()
        os.utime(directory / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + (run == "select")))
    return directory / "sources.json"


def by_uid(found: Samples, name: str) -> dict[str, dict[str, str]]:
    return {dict(labels)["unique_id"]: dict(labels) for labels in series(found, name)}


def status_of(found: Samples, unique_id: str) -> str | None:
    current = [
        dict(labels)["status"]
        for labels, v in series(found, STATUS).items()
        if dict(labels)["unique_id"] == unique_id and v == 1.0
    ]
    return current[0] if current else None


ROOT = "source.energy_analytics.iceberg_external."
VENDOR = "source.vendor_feeds.iceberg_external.eia_rto_region_data"


async def test_two_packages_with_the_same_source_are_two_series(tmp_path: Path) -> None:
    path = run_dir(tmp_path, "all")
    found = await collect(DbtCollector(DbtSettings(sources_json=str(path), checked_sources=("*",))))
    labels = by_uid(found, LOADED)
    assert labels[ROOT + "eia_rto_region_data"] == {
        "source": SRC,
        "table": "eia_rto_region_data",
        "package": "energy_analytics",
        "unique_id": ROOT + "eia_rto_region_data",
    }
    assert labels[VENDOR]["package"] == "vendor_feeds"
    assert labels[VENDOR]["table"] == "eia_rto_region_data"
    assert status_of(found, ROOT + "eia_rto_region_data") == "pass"
    assert status_of(found, VENDOR) == "error"
    # The failed query (a missing loaded_at_field) is the one runtime error.
    assert status_of(found, ROOT + "noaa_ghcnd_daily") == "runtime error"


async def test_a_select_run_leaves_unchecked_sources_at_their_last_known_state(
    tmp_path: Path,
) -> None:
    """`--select` isn't written anywhere: the configuration names what the job checks."""
    collector = DbtCollector(
        DbtSettings(
            sources_json=str(tmp_path / "target" / "sources.json"),
            checked_sources=("iceberg_external.eia_rto_region_data", "*.isone_lmp_realtime"),
        )
    )
    run_dir(tmp_path, "all")
    before = await collect(collector)
    # From the full run the collector knows miso (error) and nothing about noaa:
    # its runtime error is outside what this job is configured to check.
    assert status_of(before, ROOT + "miso_lmp_realtime") == "error"
    assert status_of(before, ROOT + "noaa_ghcnd_daily") is None

    run_dir(tmp_path, "select")
    found = await collect(collector)
    assert status_of(found, ROOT + "isone_lmp_realtime") == "warn"
    assert status_of(found, VENDOR) == "error"
    # Not selected: not a runtime error, but the last known result and its time.
    assert status_of(found, ROOT + "miso_lmp_realtime") == "error"
    assert status_of(found, ROOT + "noaa_ghcnd_daily") is None
    snapshotted = by_uid(found, "external_dbt_source_snapshotted_timestamp")
    stamps = {
        uid: value(found, "external_dbt_source_snapshotted_timestamp", **labels)
        for uid, labels in snapshotted.items()
    }
    assert stamps[ROOT + "miso_lmp_realtime"] < stamps[ROOT + "isone_lmp_realtime"]
    assert value(found, VISIBLE) == 1.0


async def test_a_select_run_without_checked_sources_never_invents_a_runtime_error(
    tmp_path: Path,
) -> None:
    path = run_dir(tmp_path, "select")
    with capture_logs() as logs:
        found = await collect(DbtCollector(DbtSettings(sources_json=str(path))))
    assert {status_of(found, ROOT + t) for t in ("miso_lmp_realtime", "noaa_ghcnd_daily")} == {None}
    assert status_of(found, ROOT + "isone_lmp_realtime") == "warn"
    assert value(found, VISIBLE) == 0.0
    assert any("checked_sources is not set" in str(e.get("reason")) for e in logs)
