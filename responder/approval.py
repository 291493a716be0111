"""The approval gate: pure changes to an incident for steps marked ``approval: required``.

A step needing approval is not run when its turn comes: ``request`` puts it in
``awaiting_approval`` (later steps of its phase wait behind it).  ``decide`` is
the one way out: an operator's approve or deny, or the timeout's.  It is a
compare-and-set on the step's status, applied inside ``Store.update`` (one
SQLite transaction, or a Redis WATCH/MULTI retried on conflict), so across
replicas exactly one decision wins; every other caller gets ``Decided.conflict``
naming the decision that stands.  Approved, the step is pending again and runs;
denied, it is skipped and never ran, so recovery has nothing of it to undo.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from . import incidents as inc

Doc = dict[str, Any]
Decision = Literal["approve", "deny"]
DECISIONS: tuple[Decision, ...] = ("approve", "deny")

AWAITING = inc.AWAITING_APPROVAL
DENIED = "denied"
# A firing step still waiting when the provider recovers is not needed any more.
WITHDRAWN = "withdrawn"
_PAST = {"approve": "approved", "deny": "denied"}


def needs_approval(item: Doc) -> bool:
    """A pending step that must wait for a decision before it runs."""
    return item.get("approval") == "required" and not item.get("decision")


what = inc.step_what


def request(doc: Doc, item_id: str, now: float, timeout_seconds: float, on_timeout: str) -> bool:
    """Put a pending step in ``awaiting_approval``; False when it is not pending."""
    item = find(doc, item_id)
    if item is None or item["status"] != "pending" or not needs_approval(item):
        return False
    slot = sum(1 for i in doc["work"] if i.get("approval_request"))
    item["status"] = AWAITING
    item["approval_request"] = {
        "requested_at": now,
        "deadline_at": now + timeout_seconds,
        "on_timeout": on_timeout,
        "slot": slot,
    }
    inc.add_event(
        doc,
        now,
        f"step {item_id} ({what(item)}) awaits approval",
        deadline_at=now + timeout_seconds,
        on_timeout=on_timeout,
    )
    return True


class Decided(NamedTuple):
    """``ok``: this call decided; else ``error`` says why not (``status``: 404 or 409)."""

    ok: bool
    step: Doc | None
    error: str | None = None
    status: int = 200


def decide(doc: Doc, item_id: str, decision: Decision, by: str, via: str, now: float) -> Decided:
    """The compare-and-set: only a step in ``awaiting_approval`` takes a decision."""
    item = find(doc, item_id)
    if item is None:
        return Decided(False, None, f"incident {doc['id']} has no step {item_id!r}", 404)
    if item["status"] != AWAITING:
        return Decided(False, item, _why_not(item), 409)
    item["decision"] = {"decision": _PAST[decision], "by": by, "via": via, "at": now}
    item["status"] = "pending" if decision == "approve" else DENIED
    inc.add_event(doc, now, f"step {item_id} ({what(item)}) {_PAST[decision]}", by=by, via=via)
    return Decided(True, item)


def _why_not(item: Doc) -> str:
    decided = item.get("decision")
    if decided:
        return (
            f"step {item['id']} was already {decided['decision']} by {decided['by']} "
            f"(via {decided['via']}); decisions are final"
        )
    if item.get("approval") != "required":
        return f"step {item['id']} does not need approval"
    return f"step {item['id']} is {item['status']}, not awaiting approval (yet)"


def timed_out(doc: Doc, now: float) -> list[tuple[str, Decision]]:
    """Waiting steps whose deadline has passed, with the decision the timeout makes."""
    due: list[tuple[str, Decision]] = []
    for item in doc["work"]:
        req = item.get("approval_request") or {}
        if item["status"] == AWAITING and now >= req.get("deadline_at", now):
            due.append((item["id"], "approve" if req.get("on_timeout") == "approve" else "deny"))
    return due


def withdraw_firing(doc: Doc, now: float) -> int:
    """The provider recovered: firing steps still waiting are not needed any more."""
    count = 0
    for item in doc["work"]:
        if item["phase"] == "firing" and item["status"] == AWAITING:
            item["status"] = WITHDRAWN
            item["decision"] = {
                "decision": WITHDRAWN,
                "by": "recovery",
                "via": "recovery",
                "at": now,
            }
            inc.add_event(doc, now, f"step {item['id']} withdrawn: the provider recovered first")
            count += 1
    return count


def find(doc: Doc, item_id: str) -> Doc | None:
    return next((item for item in doc["work"] if item["id"] == item_id), None)
