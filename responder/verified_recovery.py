"""Verified recovery (runbook 5.3-5.4) as pure changes to an incident document.

Once the resolved steps ran and the backfill was triggered, the incident is
``verifying``: first the backfill's DAG run is followed to a final state, then
the quality suite must produce a result newer than the run's end.  Only a
passing suite resolves the incident; a failed run, a failed suite or an
expired bound leaves it ``needs_attention``.  Everything the waiting needs
(stage, deadline, next poll) is in ``doc["verification"]``, so any replica
resumes it after a restart; ``verify.Verifier`` does the polling I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import incidents as inc

Doc = dict[str, Any]

BACKFILL_ACTION = "trigger_backfill"
# Airflow's final DAG run states (both 2 and 3); anything else is still on its way.
RUN_SUCCESS, RUN_FAILED = "success", "failed"

# Stages: following the run, waiting for the suite; then an outcome.
BACKFILL, QUALITY = "backfill", "quality"
PASSED, FAILED, PLANNED = "passed", "failed", "planned"


class Plan(NamedTuple):
    """What verification waits for and how long (config plus the provider's suite)."""

    suite: str
    poll_interval: float
    backfill_timeout: float
    quality_timeout: float


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


def minutes(seconds: float) -> str:
    """``12 min`` (at least 1); ``1 h``, ``2 h 5 min`` from an hour."""
    total = max(1, round(seconds / 60))
    if total < 60:
        return f"{total} min"
    hours, rest = divmod(total, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def describe(plan: Plan, dag_id: str, run_id: str) -> list[str]:
    """The two follow-up steps as they are planned (dry run, simulate, timeline)."""
    return [
        f"follow backfill run {run_id} of DAG {dag_id} to a final state "
        f"(poll every {plan.poll_interval:g} s, up to {minutes(plan.backfill_timeout)})",
        f"wait for quality suite {plan.suite} to pass with a result newer than the run's end "
        f"(up to {minutes(plan.quality_timeout)})",
    ]


def _backfill_record(doc: Doc) -> Doc | None:
    """The recovery's backfill trigger that ended well (the newest), if any."""
    found = [
        r
        for r in doc["actions"]
        if r["action"] == BACKFILL_ACTION
        and r["phase"] == "recovery"
        and r["result"] in ("success", "dry_run")
    ]
    return found[-1] if found else None


def begin(doc: Doc, plan: Plan, now: float, *, notes: bool = True) -> bool:
    """Start verifying after the resolved steps; True when there is something to follow
    (a triggered backfill) and ``doc["verification"]`` was set.  In dry run only the
    plan is recorded and nothing is waited for.  ``notes``: a notifier posts the
    follow-up reply (the incident stays live for it)."""
    if doc.get("verification") is not None:
        return False
    record = _backfill_record(doc)
    if record is None:
        return False
    params = record.get("target_params") or {}
    dag_id = str((record.get("detail") or {}).get("dag_id") or params.get("dag_id") or "")
    run_id = str((record.get("detail") or {}).get("dag_run_id") or params.get("dag_run_id") or "")
    steps = describe(plan, dag_id, run_id)
    dry = record["result"] == "dry_run"
    doc["verification"] = {
        "dry_run": dry,
        "notes": notes,
        "stage": None if dry else BACKFILL,
        "outcome": PLANNED if dry else None,
        "reason": None,
        "steps": steps,
        "started_at": now,
        "finished_at": now if dry else None,
        "deadline": now + plan.backfill_timeout,
        "next_poll_at": now,
        "poll_interval": plan.poll_interval,
        "quality_timeout": plan.quality_timeout,
        "last_error": None,
        "backfill": {
            "dag_id": dag_id,
            "dag_run_id": run_id,
            "state": None,
            "started_at": None,
            "ended_at": None,
            "duration_seconds": None,
        },
        "suite": {
            "name": plan.suite,
            "success": None,
            "run_time": None,
            "unsuccessful": None,
            "evaluated": None,
        },
    }
    if dry:
        for step in steps:
            inc.add_event(doc, now, f"planned (dry run): {step}")
    else:
        inc.add_event(doc, now, f"verifying: {steps[0]}, then {steps[1]}")
    return True


def waiting(doc: Doc) -> bool:
    """Verification started and has no outcome yet."""
    verification = doc.get("verification")
    return verification is not None and verification.get("outcome") is None


def failed(doc: Doc) -> bool:
    verification = doc.get("verification")
    return verification is not None and verification.get("outcome") == FAILED


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
            inc.add_event(doc, now, f"waiting for quality suite {verification['suite']['name']}")
            return True
    if now >= verification["deadline"]:
        state = backfill["state"] or "unknown"
        _finish(doc, now, FAILED, f"{name} still {state} when its bound expired")
        return True
    verification["next_poll_at"] = now + interval
    return True


def suite_polled(doc: Doc, poll: SuitePoll, now: float) -> bool:
    """Record a look at the suite's newest result; True if the document changed."""
    verification = doc.get("verification")
    if verification is None or verification.get("stage") != QUALITY:
        return False
    suite = verification["suite"]
    name = suite["name"]
    ended = verification["backfill"]["ended_at"]
    # A run Airflow gave no end time to: only a result after the run was seen final counts.
    after = ended if ended is not None else verification["started_at"]
    fresh = poll.found and poll.run_time is not None and poll.run_time > after
    if poll.error is not None:
        verification["last_error"] = poll.error
        inc.add_event(doc, now, f"quality suite {name}: could not read results", error=poll.error)
    elif fresh:
        verification["last_error"] = None
        suite.update(
            success=poll.success,
            run_time=poll.run_time,
            unsuccessful=poll.unsuccessful,
            evaluated=poll.evaluated,
        )
        if poll.success:
            _finish(doc, now, PASSED, f"quality suite {name} passed")
        else:
            _finish(
                doc,
                now,
                FAILED,
                f"quality suite {name} failed: {poll.unsuccessful} of {poll.evaluated} "
                "expectations unmet",
            )
        return True
    if now >= verification["deadline"]:
        _finish(
            doc, now, FAILED, f"no result of quality suite {name} newer than the backfill's end"
        )
        return True
    verification["next_poll_at"] = now + float(verification["poll_interval"])
    return True


def due(doc: Doc, now: float) -> bool:
    """Whether a verifying incident's next poll is due."""
    verification = doc.get("verification")
    if doc["state"] != inc.VERIFYING or verification is None or not waiting(doc):
        return False
    return bool(now >= (verification.get("next_poll_at") or 0.0))
