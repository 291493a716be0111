"""Verified recovery (runbook 5.3-5.4) as pure changes to an incident document.

Once the resolved steps ran and the backfill was triggered, the incident is
``verifying``: first the backfill's DAG run is followed to a final state, then
the quality suite must produce a result newer than the run's end, and (with
``verification.dbt_tests``) so must runbook 4's ``dbt test``: a passing run of
it in dbt's run_results.json.  Only both passing resolve the incident; a
failed run, a failed suite or dbt test, or an expired bound leaves it
``needs_attention``.  A backfill step an approver (or
the approval timeout) denied triggered nothing, so nothing is followed: the
record says who denied it and which missed window stays missing, and the
incident resolves (the decision was a human's, or the configured timeout's).
Everything the waiting needs (stage, deadline, next poll) is in
``doc["verification"]``, so any replica resumes it after a restart;
``verification_polls`` records each poll, ``verify.Verifier`` does the polling
I/O.  An operator's retry of an incident whose verification failed
(``restart``) follows the same run again with fresh bounds, keeping the earlier
outcomes as ``history``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import incidents as inc
from .approval import DENIED as STEP_DENIED
from .isotimes import iso_utc

Doc = dict[str, Any]

BACKFILL_ACTION = "trigger_backfill"

# Stages: following the run, waiting for the suite; then an outcome.
BACKFILL, QUALITY = "backfill", "quality"
PASSED, FAILED, PLANNED = "passed", "failed", "planned"
# The backfill step was denied (by an approver or the approval timeout): nothing ran.
DENIED = "denied"
# Earlier attempts a restarted verification keeps (the page and API show what failed).
HISTORY_KEPT = 5


class Plan(NamedTuple):
    """What verification waits for and how long (config plus the provider's suite)."""

    suite: str
    poll_interval: float
    backfill_timeout: float
    quality_timeout: float
    # dbt's --select the dbt tests must have run with; None: no dbt tests are waited for.
    dbt_select: str | None = None


def minutes(seconds: float) -> str:
    """``12 min`` (at least 1); ``1 h``, ``2 h 5 min`` from an hour."""
    total = max(1, round(seconds / 60))
    if total < 60:
        return f"{total} min"
    hours, rest = divmod(total, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def describe(plan: Plan, dag_id: str, run_id: str) -> list[str]:
    """The two follow-up steps as they are planned (dry run, simulate, timeline)."""
    steps = [
        f"follow backfill run {run_id} of DAG {dag_id} to a final state "
        f"(poll every {plan.poll_interval:g} s, up to {minutes(plan.backfill_timeout)})",
        f"wait for quality suite {plan.suite} to pass with a result newer than the run's end "
        f"(up to {minutes(plan.quality_timeout)})",
    ]
    if plan.dbt_select is not None:
        steps.append(
            f"and for dbt test --select {plan.dbt_select} to pass with a run newer than the "
            f"run's end (within the same {minutes(plan.quality_timeout)})"
        )
    return steps


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


def _unseen_run(dag_id: str, run_id: str) -> Doc:
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": None,
        "started_at": None,
        "ended_at": None,
        "duration_seconds": None,
    }


def _unseen_suite(name: str) -> Doc:
    return {
        "name": name,
        "success": None,
        "run_time": None,
        "unsuccessful": None,
        "evaluated": None,
    }


def unseen_dbt_tests(select: str) -> Doc:
    """The dbt tests waited for, before a run of them newer than the backfill was seen."""
    return {
        "select": select,
        "success": None,  # True: all that ran passed (warn too); False: one failed
        "command": None,
        "generated_at": None,
        "dbt_version": None,
        "passed": None,
        "warned": None,
        "failed": None,
        "skipped": None,
        "failed_ids": [],
    }


def denied_backfill(doc: Doc) -> Doc | None:
    """The recovery's backfill step that was denied (by an approver or the timeout)."""
    return next(
        (
            item
            for item in doc["work"]
            if item["phase"] == "recovery"
            and item["action"] == BACKFILL_ACTION
            and item["status"] == STEP_DENIED
        ),
        None,
    )


def missed_window(doc: Doc, now: float) -> tuple[float, float]:
    """(start, end) of the data the backfill was for: from the last success before the
    outage (the open time when unknown) to the recovery (as trigger_backfill takes it)."""
    start = doc.get("last_success_before")
    if start is None:
        start = doc["opened_at"]
    end = doc.get("recovered_at")
    return float(start), float(max(start, end if end is not None else now))


def denied_by(decision: Doc) -> str:
    """``alice (via api)``, or ``the approval timeout (on_timeout deny)``."""
    if decision.get("via") == "timeout":
        return "the approval timeout (on_timeout deny)"
    return f"{decision.get('by')} (via {decision.get('via')})"


def _not_run(doc: Doc, plan: Plan, item: Doc, now: float, notes: bool) -> None:
    """Record that the backfill was denied: nothing to follow, the window stays missing."""
    decision = item.get("decision") or {}
    start, end = missed_window(doc, now)
    reason = (
        f"backfill step {item['id']} ({inc.step_what(item)}) was denied by "
        f"{denied_by(decision)}: no run was triggered, so nothing was verified; the missed "
        f"window {iso_utc(start)} to {iso_utc(end)} stays missing"
    )
    doc["verification"] = {
        "dry_run": False,
        "notes": notes,
        "stage": None,
        "outcome": DENIED,
        "reason": reason,
        "steps": [],
        "started_at": now,
        "finished_at": now,
        "deadline": now,
        "next_poll_at": None,
        "poll_interval": plan.poll_interval,
        "quality_timeout": plan.quality_timeout,
        "last_error": None,
        "denied": {
            "step": item["id"],
            "by": decision.get("by"),
            "via": decision.get("via"),
            "at": decision.get("at"),
        },
        "missed_window": {"start_at": start, "end_at": end},
        "backfill": _unseen_run("", ""),  # no run was triggered
        "suite": _unseen_suite(plan.suite),
    }
    inc.add_event(doc, now, f"not verified: {reason}")


def _following(plan: Plan, now: float, dag_id: str, run_id: str) -> Doc:
    """A verification that follows a run from ``now``: fresh bounds, nothing seen yet
    (a start, and a retry's restart)."""
    following: Doc = {
        "stage": BACKFILL,
        "outcome": None,
        "reason": None,
        "steps": describe(plan, dag_id, run_id),
        "started_at": now,
        "finished_at": None,
        "deadline": now + plan.backfill_timeout,
        "next_poll_at": now,
        "poll_interval": plan.poll_interval,
        "quality_timeout": plan.quality_timeout,
        "last_error": None,
        "backfill": _unseen_run(dag_id, run_id),
        "suite": _unseen_suite(plan.suite),
    }
    # Left out when no dbt tests are waited for: a record from before they were has none.
    if plan.dbt_select is not None:
        following["dbt_tests"] = unseen_dbt_tests(plan.dbt_select)
    return following


def begin(doc: Doc, plan: Plan, now: float, *, notes: bool = True) -> bool:
    """Start verifying after the resolved steps; True when ``doc["verification"]`` was
    set: a triggered backfill to follow, or a denied one (recorded as ``denied``, with
    nothing to follow).  In dry run only the plan is recorded and nothing is waited
    for.  ``notes``: a notifier posts the follow-up reply (the incident stays live for
    it)."""
    if doc.get("verification") is not None:
        return False
    record = _backfill_record(doc)
    if record is None:
        denied = denied_backfill(doc)
        if denied is None:
            return False
        _not_run(doc, plan, denied, now, notes)
        return True
    params = record.get("target_params") or {}
    dag_id = str((record.get("detail") or {}).get("dag_id") or params.get("dag_id") or "")
    run_id = str((record.get("detail") or {}).get("dag_run_id") or params.get("dag_run_id") or "")
    dry = record["result"] == "dry_run"
    verification = {"dry_run": dry, "notes": notes, **_following(plan, now, dag_id, run_id)}
    if dry:
        verification.update(stage=None, outcome=PLANNED, finished_at=now)
    doc["verification"] = verification
    steps = verification["steps"]
    if dry:
        for step in steps:
            inc.add_event(doc, now, f"planned (dry run): {step}")
    else:
        inc.add_event(doc, now, f"verifying: {steps[0]}, then {', '.join(steps[1:])}")
    return True


def waiting(doc: Doc) -> bool:
    """Verification started and has no outcome yet."""
    verification = doc.get("verification")
    return verification is not None and verification.get("outcome") is None


def failed(doc: Doc) -> bool:
    verification = doc.get("verification")
    return verification is not None and verification.get("outcome") == FAILED


def retryable(doc: Doc) -> bool:
    """The incident needs attention because its verification failed."""
    verification = doc.get("verification")
    return (
        doc["state"] == inc.NEEDS_ATTENTION
        and verification is not None
        and verification.get("outcome") == FAILED
    )


def note_slot(doc: Doc) -> int:
    """The verification reply's note slot: one per attempt, so a retry's reply is new."""
    return int((doc.get("verification") or {}).get("attempt") or 0)


def reply_due(doc: Doc, slot: int) -> bool:
    """Whether the verification reply of this slot has an outcome to tell; False once a
    retry restarted the verification before the reply went out (the next one tells)."""
    verification = doc.get("verification") or {}
    return note_slot(doc) == slot and verification.get("outcome") in (PASSED, FAILED)


def restart(doc: Doc, plan: Plan | None, now: float) -> bool:
    """An operator's retry after a failed verification (``plan`` None: verification is
    switched off, nothing restarts): follow the same run again (a cleared run keeps its
    run_id) with fresh bounds, then the suite as before; True if restarted."""
    if plan is None or not retryable(doc):
        return False
    verification = doc["verification"]
    backfill, suite = verification["backfill"], verification["suite"]
    attempt, run_id = note_slot(doc), backfill["dag_run_id"]
    earlier = {
        "attempt": attempt,
        "outcome": verification["outcome"],
        "reason": verification["reason"],
        "started_at": verification["started_at"],
        "finished_at": verification["finished_at"],
        "backfill": dict(backfill),
        "suite": dict(suite),
    }
    history = [*(verification.get("history") or []), earlier][-HISTORY_KEPT:]
    dbt = verification.get("dbt_tests")
    if dbt is not None:
        earlier["dbt_tests"] = dict(dbt)
    seen = [suite["run_time"], verification.get("results_after")]
    # The same rule for the dbt tests: the run seen before is not the one waited for.
    dbt_seen = [(dbt or {}).get("generated_at"), verification.get("dbt_results_after")]
    # Whether the dbt tests are waited for follows the config now (switching them off
    # lets a retry verify on the suite alone); their selector stays the record's.
    select = (dbt["select"] if dbt else plan.dbt_select) if plan.dbt_select else None
    again = plan._replace(suite=suite["name"], dbt_select=select)
    verification.pop("dbt_tests", None)  # _following sets it again when waited for
    verification.update(
        _following(again, now, backfill["dag_id"], run_id),
        attempt=attempt + 1,
        history=history,
        results_after=max((t for t in seen if t is not None), default=None),
        dbt_results_after=max((t for t in dbt_seen if t is not None), default=None),
    )
    doc["state"] = inc.VERIFYING
    doc["live"] = True
    inc.add_event(
        doc,
        now,
        f"retry requested: verification restarted (run {run_id}, suite {suite['name']})",
    )
    return True
