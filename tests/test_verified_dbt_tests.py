"""Verified recovery's dbt test half (runbook 4's ``dbt test --select
mart_external_series_catalog+``) as pure changes: waited for alongside the quality
suite, a run newer than the backfill's end, both halves must pass.  The dbt
invocations are the real dbt 1.12.6 artifacts under tests/data/dbt/run_results_1_12,
their end time moved where a test needs it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from feedguard.core.dbt_results import parse_run_results
from feedguard.core.schema import ConfigError
from feedguard.responder import incidents as inc
from feedguard.responder import progress
from feedguard.responder import verification_polls as polls
from feedguard.responder import verified_recovery as vr
from feedguard.responder.actions import open_actions
from feedguard.responder.online import check_dbt_results
from feedguard.responder.payload import parse_notification
from feedguard.responder.plan import plan
from feedguard.responder.verify import verification_plan

from .conftest import make_catalog
from .support.responder import (
    FakeClock,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)
from .test_verified_recovery import (
    BACKFILL_PLAYBOOKS,
    PLAN,
    RUN_ID,
    T,
    events,
    outage,
    passed_suite,
    recovered,
    render_followup,
)

Doc = dict[str, Any]
DATA = Path(__file__).parent / "data" / "dbt" / "run_results_1_12"
SELECT = "mart_external_series_catalog+"
DBT_PLAN = PLAN._replace(dbt_select=SELECT)
CADENCE = "test.external_catalog.not_null_mart_external_series_catalog_cadence.962ec3916f"
ENDED = T + 720  # the backfill run's end


def dbt(name: str, at: float) -> polls.DbtPoll:
    """The real artifact ``name`` as if dbt had finished it at ``at``."""
    path = DATA / name / "run_results.json"
    run = parse_run_results(path, json.loads(path.read_text()))
    return polls.DbtPoll(dataclasses.replace(run, generated_at=at))


def quality(plan: vr.Plan = DBT_PLAN) -> Doc:
    """Verifying, the backfill run succeeded: waiting for the suite and the dbt tests."""
    doc = recovered()
    assert progress.settle(doc, T, notes=True, verify=plan)
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=ENDED), T + 800)
    assert doc["verification"]["stage"] == vr.QUALITY
    return doc


def test_the_plan_and_the_record_name_the_dbt_tests() -> None:
    doc = recovered()
    assert progress.settle(doc, T, notes=True, verify=DBT_PLAN)
    verification = doc["verification"]
    assert verification["steps"][2] == (
        f"and for dbt test --select {SELECT} to pass with a run newer than the run's end "
        "(within the same 10 min)"
    )
    assert verification["dbt_tests"] == vr.unseen_dbt_tests(SELECT)
    assert any(
        e.startswith("verifying: ") and f"and for dbt test --select {SELECT}" in e
        for e in events(doc)
    )
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=ENDED), T + 800)
    assert events(doc)[-1] == (
        f"waiting for quality suite external_dbt_outputs and dbt test --select {SELECT}"
    )


def test_a_passing_suite_waits_for_the_dbt_tests_then_both_resolve() -> None:
    doc = quality()
    assert polls.quality_polled(doc, passed_suite(T + 900), polls.DbtPoll(None), T + 960)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["suite"]["success"] is True
    assert "quality suite external_dbt_outputs passed" in events(doc)
    # The suite is not looked at again (None); the tests ran after the backfill.
    polls.quality_polled(doc, None, dbt("test_pass", T + 1000), T + 1020)
    assert doc["state"] == inc.RESOLVED
    verification = doc["verification"]
    assert verification["reason"] == (
        f"quality suite external_dbt_outputs passed and 3 dbt tests passed ({SELECT})"
    )
    assert verification["dbt_tests"] == {
        "select": SELECT,
        "success": True,
        "command": "test",
        "generated_at": T + 1000,
        "dbt_version": "1.12.6",
        "passed": 3,
        "warned": 0,
        "failed": 0,
        "skipped": 0,
        "failed_ids": [],
    }


def test_passing_dbt_tests_wait_for_the_suite() -> None:
    doc = quality()
    polls.quality_polled(doc, polls.SuitePoll(False), dbt("test_pass", T + 900), T + 960)
    assert doc["state"] == inc.VERIFYING
    assert any(
        e.startswith(f"dbt test --select {SELECT} passed in the dbt test at") for e in events(doc)
    )
    polls.quality_polled(doc, passed_suite(T + 1000), None, T + 1020)
    assert doc["state"] == inc.RESOLVED


def test_a_failing_dbt_test_needs_attention_naming_it() -> None:
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("test_fail", T + 900), T + 960)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["reason"] == f"1 of 3 dbt tests failed: {CADENCE}"
    assert doc["verification"]["dbt_tests"]["success"] is False
    assert doc["verification"]["dbt_tests"]["failed_ids"] == [CADENCE]


def test_a_failing_suite_and_dbt_test_are_both_told() -> None:
    doc = quality()
    failing = polls.SuitePoll(True, success=False, run_time=T + 900, unsuccessful=2, evaluated=5)
    polls.quality_polled(doc, failing, dbt("test_fail", T + 900), T + 960)
    assert doc["verification"]["reason"] == (
        "quality suite external_dbt_outputs failed: 2 of 5 expectations unmet; "
        f"1 of 3 dbt tests failed: {CADENCE}"
    )


def test_a_dbt_build_with_a_warning_passes() -> None:
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("build_warn", T + 900), T + 960)
    assert doc["state"] == inc.RESOLVED
    assert doc["verification"]["reason"].endswith(f"3 dbt tests passed, 1 warned ({SELECT})")


def test_runs_before_the_backfill_ended_or_of_other_commands_do_not_count() -> None:
    doc = quality()
    for poll in (
        dbt("test_fail", ENDED - 1),  # before the run's end: not about the backfilled data
        dbt("run", T + 900),  # dbt run: no test
    ):
        polls.quality_polled(doc, passed_suite(T + 900), poll, T + 960)
        assert doc["state"] == inc.VERIFYING
        assert doc["verification"]["dbt_tests"]["generated_at"] is None
    other = dbt("test_fail", T + 900)
    assert other.run is not None
    narrower = dataclasses.replace(other.run, select=("mart_external_series_catalog",))
    polls.quality_polled(doc, None, polls.DbtPoll(narrower), T + 960)
    assert doc["state"] == inc.VERIFYING


def test_only_skipped_tests_are_no_pass_and_the_bound_says_so() -> None:
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("build_skipped", T + 900), T + 960)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["dbt_tests"]["success"] is None
    skipped = [e for e in events(doc) if "no dbt test ran" in e]
    assert len(skipped) == 1
    polls.quality_polled(doc, None, dbt("build_skipped", T + 900), T + 1020)
    assert len([e for e in events(doc) if "no dbt test ran" in e]) == 1  # told once
    polls.quality_polled(doc, None, dbt("build_skipped", T + 900), T + 800 + PLAN.quality_timeout)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["reason"] == (
        "no dbt test ran (dbt build at 1970-01-01T00:31:40Z: 3 skipped)"
    )


def test_the_bound_expires_without_a_dbt_test_run() -> None:
    doc = quality()
    polls.quality_polled(doc, polls.SuitePoll(False), polls.DbtPoll(None), T + 800 + 600)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert doc["verification"]["reason"] == (
        "no result of quality suite external_dbt_outputs newer than the backfill's end; "
        f"no run of dbt test --select {SELECT} newer than the backfill's end"
    )


def test_an_unreadable_run_results_is_recorded_and_polled_again() -> None:
    doc = quality()
    error = "target/run_results.json: run_results.json is truncated or not JSON (x)"
    polls.quality_polled(doc, passed_suite(T + 900), polls.DbtPoll(None, error=error), T + 960)
    assert doc["state"] == inc.VERIFYING
    assert doc["verification"]["last_error"] == error
    assert doc["verification"]["next_poll_at"] == T + 960 + PLAN.poll_interval
    polls.quality_polled(doc, None, dbt("test_pass", T + 900), T + 1020)
    assert doc["state"] == inc.RESOLVED
    assert doc["verification"]["last_error"] is None


def test_a_record_from_before_the_dbt_tests_finishes_on_the_suite_alone() -> None:
    doc = quality(plan=PLAN)  # begun by code that waited for the suite alone
    assert "dbt_tests" not in doc["verification"]
    polls.quality_polled(doc, passed_suite(T + 900), dbt("test_fail", T + 900), T + 960)
    assert doc["state"] == inc.RESOLVED
    # A retry follows the config now: with the dbt tests on, it waits for them too.
    doc["state"] = inc.NEEDS_ATTENTION
    doc["verification"]["outcome"] = vr.FAILED
    assert vr.restart(doc, DBT_PLAN, T + 2000)
    assert doc["verification"]["dbt_tests"] == vr.unseen_dbt_tests(SELECT)


def test_with_the_dbt_tests_switched_off_a_retry_verifies_on_the_suite_alone() -> None:
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("test_fail", T + 900), T + 960)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert vr.restart(doc, PLAN, T + 2000)  # PLAN: dbt tests off
    assert "dbt_tests" not in doc["verification"]
    assert doc["verification"]["history"][0]["dbt_tests"]["success"] is False
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=ENDED), T + 2000)
    polls.quality_polled(doc, passed_suite(T + 1990), None, T + 2060)
    assert doc["state"] == inc.RESOLVED


def test_after_a_failed_dbt_test_a_retry_waits_for_a_newer_run() -> None:
    doc = quality()
    failing = dbt("test_fail", T + 900)
    polls.quality_polled(doc, passed_suite(T + 900), failing, T + 960)
    assert progress.retry(doc, T + 2000, DBT_PLAN)
    verification = doc["verification"]
    assert verification["dbt_results_after"] == T + 900
    assert verification["dbt_tests"] == vr.unseen_dbt_tests(SELECT)
    assert verification["history"][0]["dbt_tests"]["failed_ids"] == [CADENCE]
    # A run that was not cleared keeps its old end: only the dbt run seen is excluded.
    polls.run_polled(doc, polls.RunPoll("success", started_at=T, ended_at=ENDED), T + 2000)
    polls.quality_polled(doc, passed_suite(T + 1900), failing, T + 2060)
    assert doc["state"] == inc.VERIFYING
    assert verification["dbt_tests"]["generated_at"] is None
    polls.quality_polled(doc, None, dbt("test_pass", T + 2030), T + 2120)
    assert doc["state"] == inc.RESOLVED
    assert f"run {RUN_ID}" in " ".join(events(doc))


def test_the_follow_up_reply_tells_the_dbt_tests_next_to_the_suite() -> None:
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("build_warn", T + 900), T + 960)
    second = render_followup(doc).splitlines()[1]
    assert second == (
        f"backfill run {RUN_ID} succeeded in 12 min · external_dbt_outputs passed at "
        f"1970-01-01 00:31 UTC · dbt test {SELECT} passed (3 tests, 1 warned) at "
        "1970-01-01 00:31 UTC"
    )
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("test_fail", T + 900), T + 960)
    lines = render_followup(doc).splitlines()
    assert lines[1].endswith(
        f"· dbt test {SELECT} FAILED (1 of 3 tests failed: {CADENCE}) at 1970-01-01 00:31 UTC"
    )
    assert lines[2].startswith(f"*What failed:* 1 of 3 dbt tests failed: {CADENCE}.")
    assert f"the suite or `dbt test --select {SELECT}` by hand" in lines[2]
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), None, T + 800 + 600)
    assert (
        render_followup(doc)
        .splitlines()[1]
        .endswith(f"· dbt test {SELECT}: no run newer than the backfill's end")
    )


async def test_check_config_online_reports_the_run_results_file(tmp_path: Path) -> None:
    path = tmp_path / "target" / "run_results.json"

    def check(enabled: bool = True, dbt_enabled: bool = True) -> Any:
        config = responder_config(
            tmp_path,
            catalog=make_catalog({"MISO": {}, "EIA": {"dbt_select": "tag:eia"}}),
            verification={
                "enabled": enabled,
                "dbt_tests": {"enabled": dbt_enabled, "run_results_path": str(path)},
            },
        )
        return check_dbt_results(config)

    assert (await check(enabled=False)).detail == "verification.enabled is false"
    assert (await check(dbt_enabled=False)).detail == "verification.dbt_tests.enabled is false"
    assert (await check()).line() == (
        f"problem: dbt run results {path}: no such file (dbt writes it after each invocation)"
    )
    path.parent.mkdir()
    path.write_text(
        '{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v3.json"}}'
    )
    assert (await check()).detail.startswith(f"{path}: metadata.dbt_schema_version 'https")
    shutil.copy(DATA / "run" / "run_results.json", path)
    assert (await check()).line() == (
        f"ok: dbt run results {path}: newest: dbt run at 2026-12-01T07:58:35.430Z, "
        f"not a test or build covering --select {SELECT} / tag:eia"
    )
    shutil.copy(DATA / "test_fail" / "run_results.json", path)
    assert (await check()).detail == (
        f"newest: dbt test at 2026-12-01T07:58:45.832Z covering --select {SELECT} "
        "(not --select tag:eia): 2 passed, 1 failed, 0 skipped"
    )


async def test_simulate_and_dry_run_show_the_wait_for_the_dbt_tests(tmp_path: Path) -> None:
    config = responder_config(
        tmp_path,
        catalog=make_catalog({"MISO": {}}),
        playbooks=BACKFILL_PLAYBOOKS,
        dry_run=True,
        verification={"enabled": True, "dbt_tests": {"enabled": True}},
    )
    body = notification([resolved(alert("MISO"))])
    async with open_actions(config.actions, config.providers) as actions:
        (entry,) = plan(config, parse_notification(body), actions, T)
    _, wait, tests = entry["steps"][0]["then"]
    assert wait.startswith("wait for quality suite external_dbt_outputs ")
    assert tests == (
        f"and for dbt test --select {SELECT} to pass with a run newer than the run's end "
        "(within the same 1 h)"
    )
    clock = FakeClock()
    async with start_responder(config, clock=clock) as responder:
        doc = await outage(responder, clock, "MISO")
    assert doc["state"] == "resolved", doc["timeline"]
    planned = [e["event"] for e in doc["timeline"] if e["event"].startswith("planned (dry run)")]
    assert planned[2] == f"planned (dry run): {tests}"


def test_a_provider_names_its_own_dbt_selector_in_the_catalog(tmp_path: Path) -> None:
    def config(enabled: bool) -> Any:
        return responder_config(
            tmp_path,
            catalog=make_catalog({"MISO": {"dbt_select": "tag:miso"}, "EIA": {}}),
            verification={"enabled": True, "dbt_tests": {"enabled": enabled}},
        )

    on = config(enabled=True)
    miso, eia = verification_plan(on, "MISO"), verification_plan(on, "EIA")
    assert miso is not None
    assert eia is not None
    assert (miso.dbt_select, eia.dbt_select) == ("tag:miso", SELECT)
    off = verification_plan(config(enabled=False), "MISO")
    assert off is not None
    assert off.dbt_select is None  # the catalog's selector alone does not switch them on
    with pytest.raises(ConfigError) as caught:
        make_catalog({"MISO": {"dbt_select": " "}})
    assert str(caught.value) == (
        "<test>: providers[0].dbt_select: must name what dbt test selects (its --select), "
        "got an empty string"
    )


def test_the_follow_up_reply_says_when_no_dbt_test_ran() -> None:
    doc = quality()
    polls.quality_polled(doc, passed_suite(T + 900), dbt("build_skipped", T + 900), T + 960)
    polls.quality_polled(doc, None, polls.DbtPoll(None), T + 800 + PLAN.quality_timeout)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert (
        render_followup(doc)
        .splitlines()[1]
        .endswith(f"· dbt test {SELECT}: no test ran (3 skipped) at 1970-01-01 00:31 UTC")
    )
