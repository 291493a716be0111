"""Verified recovery's polls as pure changes to a verifying incident document:
what one look at the backfill's DAG run, or at the quality suite's newest result
and dbt's run_results.json, does (wait on, go on to the suite and the dbt tests,
pass, fail, or give up at the bound), and when the next poll is due.

The record they change is built by ``verified_recovery`` (``begin``, ``restart``);
``verify.Verifier`` reads Airflow, the GX store and run_results.json and writes
these changes through the store.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from feedguard.core.dbt_results import DbtInvocation

from . import incidents as inc
from .isotimes import iso_utc
from .verified_recovery import BACKFILL, FAILED, PASSED, QUALITY, minutes, waiting

Doc = dict[str, Any]

# Airflow's final DAG run states (both 2 and 3); anything else is still on its way.
RUN_SUCCESS, RUN_FAILED = "success", "failed"


class RunPoll(NamedTuple):
    """One GET of the backfill's DAG run: its state and times, or why it failed."""

    state: str | None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None


class SuitePoll(NamedTuple):
    """The suite's newest result in the store (``found`` False: none), or why not read."""

    found: bool
    success: bool = False
    run_time: float | None = None
    unsuccessful: int = 0
    evaluated: int = 0
    error: str | None = None


class DbtPoll(NamedTuple):
    """dbt's newest invocation in run_results.json (``run`` None: no file yet), or why
    it could not be read."""

    run: DbtInvocation | None
    error: str | None = None


# The failed tests a reason names; the record keeps as many.
FAILED_NAMED = 3


def _finish(doc: Doc, now: float, outcome: str, reason: str) -> None:
    verification = doc["verification"]
    verification.update(outcome=outcome, reason=reason, finished_at=now, next_poll_at=None)
    verification["stage"] = None
    state = inc.RESOLVED if outcome == PASSED else inc.NEEDS_ATTENTION
    doc["state"] = state
    inc.add_event(doc, now, f"state {state}: {reason}")
    if state == inc.RESOLVED:
        doc["resolved_at"] = now
    # A resolved incident stays live until its follow-up reply is posted (note_done
    # ends it); one that needs attention stays live like any other.
    notes = bool(verification.get("notes", True))
    doc["live"] = state != inc.RESOLVED or (notes and not inc.final_notes_posted(doc))


def _run_name(verification: Doc) -> str:
    return f"backfill run {verification['backfill']['dag_run_id']}"


def run_polled(doc: Doc, poll: RunPoll, now: float) -> bool:
    """Record a poll of the backfill's run; True if the document changed."""
    verification = doc.get("verification")
    if verification is None or verification.get("stage") != BACKFILL:
        return False
    name = _run_name(verification)
    backfill = verification["backfill"]
    interval = float(verification["poll_interval"])
    if poll.error is not None:
        verification["last_error"] = poll.error
        inc.add_event(doc, now, f"{name}: could not read its state", error=poll.error)
    else:
        verification["last_error"] = None
        if poll.state != backfill["state"]:
            inc.add_event(doc, now, f"{name}: {poll.state}")
        backfill.update(state=poll.state, started_at=poll.started_at, ended_at=poll.ended_at)
        if poll.started_at is not None and poll.ended_at is not None:
            backfill["duration_seconds"] = max(0.0, poll.ended_at - poll.started_at)
        if poll.state in (RUN_SUCCESS, RUN_FAILED):
            took = backfill["duration_seconds"]
            during = f" in {minutes(took)}" if took is not None else ""
            if poll.state == RUN_FAILED:
                _finish(doc, now, FAILED, f"{name} failed{during}")
                return True
            inc.add_event(doc, now, f"{name} succeeded{during}")
            verification.update(
                stage=QUALITY,
                deadline=now + float(verification["quality_timeout"]),
                next_poll_at=now,
            )
            inc.add_event(doc, now, f"waiting for {_quality_names(verification)}")
            return True
    if now >= verification["deadline"]:
        state = backfill["state"] or "unknown"
        _finish(doc, now, FAILED, f"{name} still {state} when its bound expired")
        return True
    verification["next_poll_at"] = now + interval
    return True


def _quality_names(verification: Doc) -> str:
    """``quality suite X`` and, when waited for, ``dbt test --select Y``."""
    name = f"quality suite {verification['suite']['name']}"
    dbt = verification.get("dbt_tests")
    return f"{name} and dbt test --select {dbt['select']}" if dbt else name


def _results_after(verification: Doc, key: str) -> float:
    """Results must be newer than this: the run's end (a run Airflow gave no end time
    to: the start of the verification), and after a retry the result seen before."""
    ended = verification["backfill"]["ended_at"]
    after = ended if ended is not None else verification["started_at"]
    return float(max(after, verification.get(key) or after))


def _suite_seen(doc: Doc, verification: Doc, poll: SuitePoll, now: float) -> str | None:
    """Record a look at the suite; why it failed, if its new result failed."""
    suite = verification["suite"]
    name = suite["name"]
    after = _results_after(verification, "results_after")
    fresh = poll.found and poll.run_time is not None and poll.run_time > after
    if poll.error is not None:
        verification["last_error"] = poll.error
        inc.add_event(doc, now, f"quality suite {name}: could not read results", error=poll.error)
    elif fresh:
        suite.update(
            success=poll.success,
            run_time=poll.run_time,
            unsuccessful=poll.unsuccessful,
            evaluated=poll.evaluated,
        )
        if not poll.success:
            return (
                f"quality suite {name} failed: {poll.unsuccessful} of {poll.evaluated} "
                "expectations unmet"
            )
        if verification.get("dbt_tests") is not None:  # else the outcome says it
            inc.add_event(doc, now, f"quality suite {name} passed")
    return None


def dbt_failure(dbt: Doc) -> str:
    """``1 of 3 dbt tests failed: test.a`` (the first few named)."""
    ids = list(dbt["failed_ids"])
    more = dbt["failed"] - len(ids)
    named = ", ".join(ids) + (f" and {more} more" if more > 0 else "")
    ran = dbt["passed"] + dbt["failed"]
    return f"{dbt['failed']} of {ran} dbt tests failed: {named}"


def _dbt_seen(doc: Doc, verification: Doc, poll: DbtPoll, now: float) -> str | None:
    """Record a look at run_results.json; why it failed, if a new covering run failed."""
    dbt = verification["dbt_tests"]
    what = f"dbt test --select {dbt['select']}"
    run = poll.run
    if poll.error is not None:
        verification["last_error"] = poll.error
        inc.add_event(doc, now, f"{what}: could not read run_results.json", error=poll.error)
        return None
    after = _results_after(verification, "dbt_results_after")
    fresh = run is not None and run.covers(dbt["select"]) and run.generated_at > after
    if run is None or not fresh or run.generated_at == dbt["generated_at"]:
        return None  # not run yet, another command's, or this run was recorded already
    dbt.update(
        command=run.command,
        generated_at=run.generated_at,
        dbt_version=run.dbt_version,
        passed=run.passed,
        warned=run.warned,
        failed=len(run.failed),
        skipped=run.skipped,
        failed_ids=list(run.failed[:FAILED_NAMED]),
        success=(not run.failed) if run.ran else None,
    )
    if run.failed:
        return dbt_failure(dbt)
    at = f"dbt {run.command} at {iso_utc(run.generated_at)}"
    if not run.ran:  # skipped only, or none selected: not a pass; a later run may be
        inc.add_event(doc, now, f"{what}: no dbt test ran in the {at} ({run.skipped} skipped)")
        return None
    warned = f", {run.warned} warned" if run.warned else ""
    inc.add_event(doc, now, f"{what} passed in the {at}: {run.passed} tests{warned}")
    return None


def _missing(verification: Doc) -> list[str]:
    """What the bound expired without: a passing suite result, a passing dbt test run."""
    missing = []
    suite = verification["suite"]
    if suite.get("success") is not True:
        missing.append(f"no result of quality suite {suite['name']} newer than the backfill's end")
    dbt = verification.get("dbt_tests")
    if dbt is not None and dbt.get("success") is not True:
        if dbt.get("generated_at") is not None:
            at = iso_utc(dbt["generated_at"])
            skipped = dbt["skipped"]
            missing.append(f"no dbt test ran (dbt {dbt['command']} at {at}: {skipped} skipped)")
        else:
            missing.append(
                f"no run of dbt test --select {dbt['select']} newer than the backfill's end"
            )
    return missing


def suite_polled(doc: Doc, poll: SuitePoll, now: float) -> bool:
    """Record a look at the suite's newest result; True if the document changed."""
    return quality_polled(doc, poll, None, now)


def quality_polled(doc: Doc, suite: SuitePoll | None, dbt: DbtPoll | None, now: float) -> bool:
    """Record a look at the suite's newest result and at dbt's newest invocation (None:
    not looked at, its half is passed already or not waited for); True if the document
    changed.  Either failing fails the verification; both passing resolves it."""
    verification = doc.get("verification")
    if verification is None or verification.get("stage") != QUALITY:
        return False
    verification["last_error"] = None
    failures = []
    if suite is not None:
        failures.append(_suite_seen(doc, verification, suite, now))
    if dbt is not None and verification.get("dbt_tests") is not None:
        failures.append(_dbt_seen(doc, verification, dbt, now))
    failed = [reason for reason in failures if reason is not None]
    if failed:
        _finish(doc, now, FAILED, "; ".join(failed))
        return True
    missing = _missing(verification)
    if not missing:
        _finish(doc, now, PASSED, _passed(verification))
        return True
    if now >= verification["deadline"]:
        _finish(doc, now, FAILED, "; ".join(missing))
        return True
    verification["next_poll_at"] = now + float(verification["poll_interval"])
    return True


def _passed(verification: Doc) -> str:
    reason = f"quality suite {verification['suite']['name']} passed"
    dbt = verification.get("dbt_tests")
    if dbt is None:
        return reason
    warned = f", {dbt['warned']} warned" if dbt["warned"] else ""
    return f"{reason} and {dbt['passed']} dbt tests passed{warned} ({dbt['select']})"


def due(doc: Doc, now: float) -> bool:
    """Whether a verifying incident's next poll is due."""
    verification = doc.get("verification")
    if doc["state"] != inc.VERIFYING or verification is None or not waiting(doc):
        return False
    return bool(now >= (verification.get("next_poll_at") or 0.0))
