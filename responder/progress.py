"""Step and state bookkeeping of an incident document: a step finished, the state
it settles in once no work is pending (verifying a triggered backfill first), and
retries (automatic ones of transiently failed steps, an operator's).

Pure, like ``transitions``: ``runner`` wraps these in store updates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import incidents as inc
from . import verified_recovery as vr

Doc = dict[str, Any]


def set_state(doc: Doc, state: str, now: float, why: str) -> None:
    if doc["state"] != state:
        doc["state"] = state
        inc.add_event(doc, now, f"state {state}: {why}")


def finish_item(doc: Doc, item_id: str, ok: bool, now: float) -> bool:
    """Mark a pending step done or failed; False when it is not pending (any more)."""
    for item in doc["work"]:
        if item["id"] == item_id and item["status"] == "pending":
            item["status"] = "done" if ok else "failed"
            if not ok:
                inc.add_event(doc, now, f"step {item_id} failed: needs attention")
            return True
    return False


def settle(doc: Doc, now: float, *, notes: bool, verify: vr.Plan | None = None) -> bool:
    """Move to the state the incident settles in once no work is pending; True if it
    changed.  With ``verify`` a triggered backfill is verified first (``verifying``).
    A resolved incident stays live until its final notes are posted."""
    began = (
        verify is not None and _recovered_cleanly(doc) and vr.begin(doc, verify, now, notes=notes)
    )
    state = inc.settled_state(doc)
    if state == doc["state"]:
        return began
    doc["state"] = state
    inc.add_event(doc, now, f"state {state}")
    if state == inc.RESOLVED:
        doc["resolved_at"] = now
        doc["live"] = notes and not inc.final_notes_posted(doc)
    return True


def _recovered_cleanly(doc: Doc) -> bool:
    """The resolved steps were planned and none of them is pending, awaiting approval
    or failed."""
    if not (doc.get("recovery") or {}).get("steps_enqueued"):
        return False
    unfinished = ("pending", inc.AWAITING_APPROVAL, "failed")
    return not any(
        item["phase"] == "recovery" and item["status"] in unfinished for item in doc["work"]
    )


def transient_failures(doc: Doc, limit: int) -> dict[str, list[str]]:
    """Failed steps whose every failed target failed transiently, retried fewer than
    ``limit`` times automatically: {step id: the actions (circuits) they call}."""
    found: dict[str, list[str]] = {}
    for item in doc["work"]:
        if item["status"] != "failed" or item.get("auto_retries", 0) >= limit:
            continue
        latest: dict[str, Doc] = {}
        for record in doc["actions"]:
            if record["work"] == item["id"]:
                latest[record["target"]] = record
        failures = [r for r in latest.values() if r["result"] == "failure"]
        if failures and all(r["detail"].get("transient") for r in failures):
            found[item["id"]] = sorted({r["action"] for r in failures})
    return found


def auto_retry(doc: Doc, step_ids: Sequence[str], limit: int, now: float) -> bool:
    """Put these transiently failed steps back to pending, one bounded attempt more."""
    retried = False
    for item in doc["work"]:
        if item["id"] in step_ids and item["status"] == "failed":
            item["status"] = "pending"
            item["auto_retries"] = item.get("auto_retries", 0) + 1
            inc.add_event(
                doc, now, f"automatic retry {item['auto_retries']}/{limit} of step {item['id']}"
            )
            retried = True
    if retried:
        recovering = (doc.get("recovery") or {}).get("steps_enqueued")
        doc["state"] = inc.RECOVERING if recovering else inc.STABILISING
        doc["live"] = True
    return retried


def retry(doc: Doc, now: float, verify: vr.Plan | None) -> bool:
    """An operator's retry: a failed verification restarts, failed steps go back to
    pending (both may happen at once); False when there is nothing to retry."""
    restarted = vr.restart(doc, verify, now)
    return retry_failed(doc, now) > 0 or restarted


def retry_failed(doc: Doc, now: float) -> int:
    """Put failed steps back to pending (operator action); how many."""
    failed = [item for item in doc["work"] if item["status"] == "failed"]
    if not failed:
        return 0
    for item in failed:
        item["status"] = "pending"
    recovering = (doc.get("recovery") or {}).get("steps_enqueued")
    doc["state"] = inc.RECOVERING if recovering else inc.STABILISED
    doc["live"] = True
    inc.add_event(doc, now, f"retry requested: {len(failed)} failed steps")
    return len(failed)
