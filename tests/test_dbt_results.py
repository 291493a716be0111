"""dbt test outcomes from run_results.json: the real dbt 1.12.6 artifacts under
tests/data/dbt/run_results_1_12 (see its README), and broken copies of them."""

from __future__ import annotations

import copy
import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from feedguard.core.dbt_results import (
    DbtInvocation,
    DbtResultsError,
    RunResultsFile,
    parse_run_results,
)

DATA = Path(__file__).parent / "data" / "dbt" / "run_results_1_12"
DATA_1_7 = DATA.parent / "run_results_1_7"
SELECT = "mart_external_series_catalog+"
CADENCE = "test.external_catalog.not_null_mart_external_series_catalog_cadence.962ec3916f"


def load(name: str) -> Any:
    return json.loads((DATA / name / "run_results.json").read_text())


def parse(name: str) -> DbtInvocation:
    return parse_run_results(DATA / name / "run_results.json", load(name))


def test_a_passing_dbt_test_run() -> None:
    run = parse("test_pass")
    assert (run.command, run.select, run.exclude) == ("test", (SELECT,), ())
    assert (run.passed, run.warned, run.failed, run.skipped, run.ran) == (3, 0, (), 0, 3)
    assert run.dbt_version == "1.12.6"
    written = load("test_pass")["metadata"]["generated_at"]
    assert run.generated_at == datetime.fromisoformat(written).timestamp()
    assert run.covers(SELECT)


@pytest.mark.parametrize("name", ["test_pass", "test_fail"])
def test_dbt_1_7_writes_the_same_fields_in_run_results_v5(name: str) -> None:
    path = DATA_1_7 / name / "run_results.json"
    data = json.loads(path.read_text())
    assert data["metadata"]["dbt_schema_version"].endswith("/run-results/v5.json")
    run = parse_run_results(path, data)
    assert (run.command, run.select, run.dbt_version) == ("test", (SELECT,), "1.7.19")
    assert run.covers(SELECT)
    assert run.failed == ((CADENCE,) if name == "test_fail" else ())
    assert run.ran == 3


def test_a_failing_dbt_test_run_names_the_failed_test() -> None:
    run = parse("test_fail")
    assert (run.passed, run.failed, run.ran) == (2, (CADENCE,), 3)


def test_a_warning_counts_as_passed_and_a_model_is_not_a_test() -> None:
    run = parse("build_warn")  # the model's "success" is not counted
    assert (run.command, run.passed, run.warned, run.failed, run.ran) == ("build", 3, 1, (), 3)


def test_tests_skipped_after_a_model_error_did_not_run() -> None:
    run = parse("build_skipped")
    assert (run.ran, run.skipped, run.failed) == (0, 3, ())


@pytest.mark.parametrize(
    ("command", "select", "exclude", "covered"),
    [
        ("test", [SELECT], [], True),
        ("build", [], [], True),  # the whole project
        ("test", ["other_model", SELECT], [], True),  # a union of selectors
        ("test", [f"other_model {SELECT}"], [], True),  # one space-separated argument
        ("test", ["mart_external_series_catalog"], [], False),  # without its children
        ("test", [SELECT], ["tag:slow"], False),  # an exclusion may drop a wanted test
        ("run", [], [], False),  # runs no test
        ("seed", [SELECT], [], False),
    ],
)
def test_which_invocations_cover_the_runbooks_selector(
    command: str, select: list[str], exclude: list[str], covered: bool
) -> None:
    data = load("test_pass")
    data["args"].update(which=command, select=select, exclude=exclude)
    assert parse_run_results(Path("r.json"), data).covers(SELECT) is covered


def test_a_dbt_run_is_read_but_covers_no_test() -> None:
    run = parse("run")
    assert (run.command, run.ran, run.covers(SELECT)) == ("run", 0, False)


def test_older_schema_versions_and_a_missing_select_are_read() -> None:
    data = load("test_pass")
    for version in ("v4", "v5"):
        data["metadata"]["dbt_schema_version"] = (
            f"https://schemas.getdbt.com/dbt/run-results/{version}.json"
        )
        del data["args"]["select"]  # dbt leaves null arguments out
        run = parse_run_results(Path("r.json"), data)
        assert (run.select, run.covers(SELECT)) == ((), True)
        data["args"]["select"] = SELECT  # a plain string is one selector
        assert parse_run_results(Path("r.json"), data).select == (SELECT,)


def broken(change: str) -> Any:
    data = copy.deepcopy(load("test_fail"))
    if change == "version":
        data["metadata"]["dbt_schema_version"] = (
            "https://schemas.getdbt.com/dbt/run-results/v7.json"
        )
    elif change == "sources":
        data["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/sources/v3.json"
    elif change == "no_time":
        del data["metadata"]["generated_at"]
    elif change == "naive_time":
        data["metadata"]["generated_at"] = "2026-12-01T07:58:45"
    elif change == "no_which":
        del data["args"]["which"]
    elif change == "select":
        data["args"]["select"] = {"a": 1}
    elif change == "results":
        data["results"] = {}
    elif change == "status":
        data["results"][0]["status"] = "exploded"
    elif change == "unique_id":
        del data["results"][1]["unique_id"]
    elif change == "list":
        data = [data]
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "version",
            "metadata.dbt_schema_version 'https://schemas.getdbt.com/dbt/run-results/v7.json' "
            "is not one this reads",
        ),
        ("sources", "metadata.dbt_schema_version 'https://schemas.getdbt.com/dbt/sources/v3.json'"),
        ("no_time", "metadata.generated_at is missing"),
        ("naive_time", "metadata.generated_at: needs a UTC offset"),
        ("no_which", "args.which is missing"),
        ("select", "args.select is not a list of selectors"),
        ("results", "results is not a list"),
        ("status", f"results[0].status 'exploded' of {CADENCE} is not one of pass, warn, fail"),
        ("unique_id", "results[1].unique_id is missing"),
        ("list", "not a dbt run_results.json (no metadata object)"),
    ],
)
def test_what_it_does_not_know_is_refused_naming_file_and_field(change: str, message: str) -> None:
    with pytest.raises(DbtResultsError) as caught:
        parse_run_results(Path("target/run_results.json"), broken(change))
    assert str(caught.value).startswith("target/run_results.json: ")
    assert message in str(caught.value)


def test_the_file_missing_truncated_then_written(tmp_path: Path) -> None:
    path = tmp_path / "target" / "run_results.json"
    reader = RunResultsFile(path)
    assert reader.read() is None  # dbt has not written it yet
    path.parent.mkdir()
    text = (DATA / "test_pass" / "run_results.json").read_text()
    path.write_text(text[: len(text) // 2])  # read while dbt writes it
    with pytest.raises(DbtResultsError, match=r"run_results\.json is truncated or not JSON"):
        reader.read()
    shutil.copy(DATA / "test_pass" / "run_results.json", path)
    first = reader.read()
    assert first is not None
    assert first.passed == 3


def test_a_settled_file_is_parsed_once_and_again_when_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    shutil.copy(DATA / "test_pass" / "run_results.json", path)
    os.utime(path, (1_000_000, 1_000_000))  # long settled
    reader = RunResultsFile(path)
    assert reader.read() == reader.read()
    assert reader.parsed == 1
    shutil.copy(DATA / "test_fail" / "run_results.json", path)  # the next invocation
    again = reader.read()
    assert again is not None
    assert again.failed == (CADENCE,)
    assert reader.parsed == 2
