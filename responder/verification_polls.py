"""Verified recovery's polls as pure changes to a verifying incident document:
what one look at the backfill's DAG run or at the quality suite's newest result
does (wait on, go on to the suite, pass, fail, or give up at the bound), and when
the next poll is due.

The record they change is built by ``verified_recovery`` (``begin``, ``restart``);
``verify.Verifier`` reads Airflow and the GX store and writes these changes
through the store.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import incidents as inc
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
    # After a retry, the result that failed before is not the one waited for.
    after = max(after, verification.get("results_after") or after)
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
