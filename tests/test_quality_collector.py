"""GX validation results: newest run per suite, from the store's folder layout.

Trees are built from the result files under tests/data/gx (one as GX 1.24
writes it, one as GX 0.18 did) at the paths a file-mode context uses:
validations/<suite, dots as folders>/<run_name>/<YYYYMMDDTHHMMSS.ffffffZ>/<batch>.json
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from feedguard.core.gx_results import COLD_PER_SCAN, ValidationStore, ValidationStoreError
from feedguard.exporter.collectors.base import Deadline
from feedguard.exporter.collectors.quality import QualityCollector, QualitySettings

from .support.families import Samples, samples, value

DATA = Path(__file__).parent / "data" / "gx"
GX1 = json.loads((DATA / "gx1_validation_result.json").read_text())
GX0 = json.loads((DATA / "gx0_validation_result.json").read_text())
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S.%fZ")


def write_result(
    root: Path,
    suite: str,
    run_name: str,
    when: datetime,
    *,
    success: bool,
    unsuccessful: int = 0,
    batch: str = "warehouse_duckdb-external_outputs",
    legacy: bool = False,
) -> Path:
    data: dict[str, Any] = copy.deepcopy(GX0 if legacy else GX1)
    if legacy:
        data["meta"]["expectation_suite_name"] = suite
    else:
        data["suite_name"] = suite
    data["success"] = success
    data["statistics"]["unsuccessful_expectations"] = unsuccessful
    data["statistics"]["evaluated_expectations"] = 3
    data["meta"]["run_id"] = {"run_name": run_name, "run_time": when.isoformat()}
    folder = root.joinpath(*suite.split("."), run_name, stamp(when))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{batch}.json"
    path.write_text(json.dumps(data))
    return path


async def collect(collector: QualityCollector) -> Samples:
    return samples(await collector.collect(Deadline.in_seconds(5)))


async def test_newest_run_across_run_names_wins(tmp_path: Path) -> None:
    root = tmp_path / "validations"
    suite = "external_dbt_outputs"
    write_result(root, suite, "__none__", T0, success=True)
    write_result(root, suite, "__none__", T0 + timedelta(minutes=10), success=True)
    # The newest run, under another run name, validated two assets; one failed.
    newest = T0 + timedelta(minutes=20)
    write_result(root, suite, "hourly", newest, success=True, batch="a-one")
    write_result(root, suite, "hourly", newest, success=False, unsuccessful=2, batch="a-two")
    write_result(root, suite, "hourly", T0 - timedelta(days=1), success=False, unsuccessful=9)

    found = await collect(QualityCollector(QualitySettings(validations_dir=str(root))))
    assert value(found, "external_quality_suite_success", suite=suite) == 0.0
    assert value(found, "external_quality_suite_unsuccessful_expectations", suite=suite) == 2.0
    assert (
        value(found, "external_quality_suite_last_run_timestamp", suite=suite) == newest.timestamp()
    )

    later = T0 + timedelta(minutes=30)
    write_result(root, suite, "__none__", later, success=True)
    found = await collect(QualityCollector(QualitySettings(validations_dir=str(root))))
    assert value(found, "external_quality_suite_success", suite=suite) == 1.0
    assert value(found, "external_quality_suite_unsuccessful_expectations", suite=suite) == 0.0
    assert value(found, "external_quality_suite_last_run_timestamp", suite=suite) == (
        later.timestamp()
    )


async def test_gx0_results_and_dotted_suite_names(tmp_path: Path) -> None:
    root = tmp_path / "validations"
    write_result(root, "legacy.outputs", "nightly", T0, success=True, legacy=True)
    write_result(root, "legacy", "nightly", T0 + timedelta(hours=1), success=False, legacy=True)
    write_result(root, "external_dbt_outputs", "__none__", T0, success=True)
    found = await collect(QualityCollector(QualitySettings(validations_dir=str(root))))
    assert value(found, "external_quality_suite_success", suite="legacy.outputs") == 1.0
    assert value(found, "external_quality_suite_success", suite="legacy") == 0.0
    assert value(found, "external_quality_suite_success", suite="external_dbt_outputs") == 1.0

    only = QualityCollector(
        QualitySettings(validations_dir=str(root), suites=("external_dbt_outputs",))
    )
    found = await collect(only)
    assert {dict(labels)["suite"] for (name, labels) in found if "suite_success" in name} == {
        "external_dbt_outputs"
    }


def test_thousands_of_runs_read_one_file_and_cache_listings(tmp_path: Path) -> None:
    root = tmp_path / "validations"
    suite = "external_dbt_outputs"
    runs = 3000
    for i in range(runs):
        write_result(root, suite, "__none__", T0 + timedelta(minutes=i), success=i % 2 == 0)
    # Folders changed in the last seconds are listed again (mtime ticks can be
    # coarse); these were written a while ago.
    for folder in (root, root / suite, root / suite / "__none__"):
        os.utime(folder, (1_700_000_000, 1_700_000_000))
    store = ValidationStore(root)
    (result,) = store.scan()
    assert result.run_time == (T0 + timedelta(minutes=runs - 1)).timestamp()
    assert result.success is False
    assert store.parsed == 1
    first_listed = store.listed  # root, suite folder, run-name folder
    assert first_listed == 3

    store.scan()
    assert (store.listed, store.parsed) == (first_listed, 1)

    write_result(root, suite, "__none__", T0 + timedelta(minutes=runs), success=True)
    (result,) = store.scan()
    assert result.success is True
    # Only the run-name folder that gained the run is listed again.
    assert (store.listed, store.parsed) == (first_listed + 1, 2)


def test_run_folder_without_a_file_yet_keeps_the_previous_result(tmp_path: Path) -> None:
    root = tmp_path / "validations"
    suite = "external_dbt_outputs"
    write_result(root, suite, "__none__", T0, success=False, unsuccessful=1)
    store = ValidationStore(root)
    assert store.scan()[0].success is False
    (root / suite / "__none__" / stamp(T0 + timedelta(minutes=1))).mkdir()
    assert store.scan()[0].run_time == T0.timestamp()


async def test_missing_store_and_truncated_result_are_errors(tmp_path: Path) -> None:
    root = tmp_path / "validations"
    collector = QualityCollector(QualitySettings(validations_dir=str(root)))
    with pytest.raises(ValidationStoreError, match="validations directory is missing"):
        await collect(collector)
    path = write_result(root, "external_dbt_outputs", "__none__", T0, success=True)
    text = path.read_text()
    path.write_text(text[:100])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(ValidationStoreError, match="truncated or not JSON"):
        await collect(collector)
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2))
    found = await collect(collector)
    assert value(found, "external_quality_suite_success", suite="external_dbt_outputs") == 1.0


async def test_a_configured_suite_that_never_appears_is_reported_once(tmp_path: Path) -> None:
    root = tmp_path / "validations"
    write_result(root, "external_dbt_outputs", "__none__", T0, success=True)
    collector = QualityCollector(
        QualitySettings(
            validations_dir=str(root), suites=("external_dbt_outputs", "external.typo_suite")
        )
    )
    with capture_logs() as logs:
        found = await collect(collector)
        again = await collect(collector)
    for scrape in (found, again):
        assert value(scrape, "external_quality_suite_found", suite="external.typo_suite") == 0.0
        assert value(scrape, "external_quality_suite_found", suite="external_dbt_outputs") == 1.0
    missing = [e for e in logs if e["event"].startswith("configured quality suite has no")]
    assert [e["suite"] for e in missing] == ["external.typo_suite"]

    write_result(root, "external.typo_suite", "__none__", T0, success=False)
    later = await collect(collector)
    assert value(later, "external_quality_suite_found", suite="external.typo_suite") == 1.0
    assert value(later, "external_quality_suite_success", suite="external.typo_suite") == 0.0


def test_scan_cost_does_not_grow_with_run_names_and_a_reused_name_is_seen(
    tmp_path: Path,
) -> None:
    """GX 0.x names every run: a scan stats a bounded number of folders, and a
    run under a name used once long ago is found within a bounded number of scans."""
    root = tmp_path / "validations"
    suite = "legacy_outputs"
    names = 3 * COLD_PER_SCAN + 5
    for i in range(names):
        write_result(root, suite, f"run-{i:04d}", T0 + timedelta(minutes=i), success=True)
    for path, _, _ in os.walk(root):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    store = ValidationStore(root)
    store.scan()
    before = store.stats
    store.scan()
    per_scan = store.stats - before
    assert per_scan <= COLD_PER_SCAN + 4  # root, suite folder, newest name, the turn's slice

    # A new run under an old name: only that run-name folder's mtime moves.
    later = T0 + timedelta(days=1)
    write_result(root, suite, "run-0003", later, success=False, legacy=True)
    seen_after = None
    for scan in range(1, names // COLD_PER_SCAN + 2):
        (result,) = store.scan()
        if result.run_time == later.timestamp():
            seen_after = scan
            break
    assert seen_after is not None
    assert result.success is False
