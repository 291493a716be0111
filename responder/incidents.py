"""Incident documents: how the ledger keeps an incident, and pure changes to it.

An incident is one JSON document (see docs/responder.md, "State machine").
Every function here is a pure ``doc -> doc`` change handed to ``Store.update``,
so it may run more than once and must not do I/O.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from feedguard.core.tracing import current_trace_id

from .plugins import ActionRecord, AlertView, IncidentView

Doc = dict[str, Any]

OPEN = "open"
STABILISING = "stabilising"
STABILISED = "stabilised"
RECOVERING = "recovering"
# Resolved steps done, backfill triggered: following it and the quality suite.
VERIFYING = "verifying"
RESOLVED = "resolved"
NEEDS_ATTENTION = "needs_attention"
STATES = (OPEN, STABILISING, STABILISED, RECOVERING, VERIFYING, RESOLVED, NEEDS_ATTENTION)

# A step's status while it waits for an operator's decision (approval.py).
AWAITING_APPROVAL = "awaiting_approval"
APPROVAL_FIELDS = ("approval", "approval_timeout_minutes", "approval_on_timeout")

# Timeline entries kept per incident; older ones are summarised by a counter.
TIMELINE_LIMIT = 500


def incident_id(provider: str, opened_at: float, seed: str) -> str:
    """Deterministic for one inbox entry, so re-processing it after a crash is a no-op."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:8]
    return f"{provider}-{int(opened_at)}-{digest}"


def new_incident(
    ident: str,
    provider: str,
    opened_at: float,
    last_success_before: float | None,
    lineage_failure: Doc | None = None,
) -> Doc:
    return {
        "id": ident,
        "provider": provider,
        "state": OPEN,
        "live": True,
        "opened_at": opened_at,
        "resolved_at": None,
        "recovered_at": None,
        "last_success_before": last_success_before,
        # The provider's recent OpenLineage FAIL/ABORT when it opened (lineage_failure.py).
        "lineage_failure": lineage_failure,
        "alerts": {},
        "beyond_sample": {"firing": 0, "resolved": 0},
        "transitions": [],
        "group_keys": [],
        "playbooks": [],
        "work": [],
        "actions": [],
        "timeline": [
            {
                "at": opened_at,
                "event": "incident opened",
                "last_success_before": last_success_before,
                **_traced(),
            }
        ],
        "timeline_dropped": 0,
        "notes": {},
        "note_slots": [],
        "recovery": None,
    }


# Not part of what makes an event a repeat of the last one.
_REPEAT_IGNORES = ("at", "repeats", "last_at", "trace_id")


def _traced() -> Doc:
    """``{"trace_id": …}`` inside a sampled trace, else nothing."""
    trace_id = current_trace_id()
    return {} if trace_id is None else {"trace_id": trace_id}


def add_event(doc: Doc, at: float, event: str, **fields: Any) -> None:
    """Append a timeline entry; inside a sampled trace it carries its ``trace_id``."""
    timeline = doc["timeline"]
    if timeline:
        last = timeline[-1]
        same = {k: v for k, v in last.items() if k not in _REPEAT_IGNORES}
        if same == {"event": event, **fields}:
            # The same event again (a failing probe every 30 s, a re-sent alert):
            # counted on the last entry instead of flooding the timeline.
            last["repeats"] = last.get("repeats", 1) + 1
            last["last_at"] = at
            return
    timeline.append({"at": at, "event": event, **fields, **_traced()})
    extra = len(doc["timeline"]) - TIMELINE_LIMIT
    if extra > 0:
        # Keep the first entry (the opening) and the newest ones.
        del doc["timeline"][1 : 1 + extra]
        doc["timeline_dropped"] = doc.get("timeline_dropped", 0) + extra


def _same_step(item: Mapping[str, Any], step: Mapping[str, Any]) -> bool:
    return bool(
        item["action"] == step.get("action")
        and item["revert"] == step.get("revert")
        and item["params"] == dict(step.get("params") or {})
    )


def enqueue(doc: Doc, phase: str, playbook: str, steps: Sequence[Mapping[str, Any]]) -> int:
    """Append a playbook's steps for a phase as pending work; returns how many.

    A step identical to one another playbook already planned for the same phase
    of this incident (same action or revert, same params) is not planned twice.
    """
    added = 0
    for index, step in enumerate(steps):
        same = next((i for i in doc["work"] if i["phase"] == phase and _same_step(i, step)), None)
        if same is not None:
            if step.get("approval") == "required" and same["status"] == "pending":
                # Another playbook planned it without the gate: the stricter one holds.
                same.update({k: step.get(k) for k in APPROVAL_FIELDS})
            continue
        added += 1
        doc["work"].append(
            {
                "id": f"{phase}:{playbook}:{index}",
                "phase": phase,
                "playbook": playbook,
                "index": index,
                "action": step.get("action"),
                "revert": step.get("revert"),
                "params": dict(step.get("params") or {}),
                "status": "pending",
                # approval.py: "required" makes the step wait for a decision.
                **{k: step[k] for k in APPROVAL_FIELDS if step.get(k) is not None},
            }
        )
    return added


def pending_work(doc: Doc) -> list[Doc]:
    return [item for item in doc["work"] if item["status"] == "pending"]


def next_work(doc: Doc) -> Doc | None:
    """The step whose turn it is: the first pending one, or one awaiting approval
    (the steps after it wait)."""
    return next((i for i in doc["work"] if i["status"] in ("pending", AWAITING_APPROVAL)), None)


def awaiting_approval(doc: Doc) -> list[Doc]:
    return [item for item in doc["work"] if item["status"] == AWAITING_APPROVAL]


def step_what(item: Mapping[str, Any]) -> str:
    return str(item.get("action") or f"revert {item.get('revert')}")


def approval_steps(doc: Doc) -> list[Doc]:
    """What notes and pages show of the steps that need (or needed) approval."""
    steps = []
    for item in doc["work"]:
        if item.get("approval") != "required":
            continue
        req = item.get("approval_request") or {}
        steps.append(
            {
                "id": item["id"],
                "what": step_what(item),
                "phase": item["phase"],
                "status": item["status"],
                "requested_at": req.get("requested_at"),
                "deadline_at": req.get("deadline_at"),
                "on_timeout": req.get("on_timeout"),
                "decision": copy.deepcopy(item.get("decision")),
            }
        )
    return steps


def beyond_sample(doc: Doc) -> Doc:
    """Firings and resolves of the alerts not kept in full (``alerts`` is a sample)."""
    beyond: Doc = doc.setdefault("beyond_sample", {"firing": 0, "resolved": 0})
    return beyond


def alert_counts(doc: Mapping[str, Any]) -> Doc:
    """Every alert of the incident, counted: the sample kept in full plus the firings
    beyond it (a firing beyond the sample counts once per startsAt)."""
    sample = doc["alerts"].values()
    firing = sum(1 for a in sample if a["status"] == "firing")
    beyond = doc.get("beyond_sample") or {"firing": 0, "resolved": 0}
    return {
        "total": len(sample) + beyond["firing"],
        "firing": firing + beyond["firing"] - beyond["resolved"],
        "resolved": len(sample) - firing + beyond["resolved"],
        "sampled": len(sample),
    }


def all_resolved(doc: Doc) -> bool:
    counts = alert_counts(doc)
    return bool(counts["total"] > 0 and counts["firing"] == 0)


def settled_state(doc: Doc) -> str:
    """The state once no work is pending (a step awaiting approval keeps it as it is)."""
    if awaiting_approval(doc):
        return str(doc["state"])
    failed = any(item["status"] == "failed" for item in doc["work"])
    recovery = doc.get("recovery") or {}
    if recovery.get("steps_enqueued"):
        # Only a failed recovery step leaves something to fix; firing ones are history.
        undone = any(
            item["status"] == "failed" and item["phase"] == "recovery" for item in doc["work"]
        )
        if undone:
            return NEEDS_ATTENTION
        verification = doc.get("verification") or {}
        if verification and verification.get("outcome") is None:
            return VERIFYING
        return NEEDS_ATTENTION if verification.get("outcome") == "failed" else RESOLVED
    if doc["state"] == RECOVERING:
        return RECOVERING
    return NEEDS_ATTENTION if failed else STABILISED


def final_notes_posted(doc: Doc) -> bool:
    """The resolution note, and the verification follow-up when there is one to post."""
    slots = doc.get("note_slots") or ()
    verification = doc.get("verification") or {}
    followup = verification.get("outcome") in ("passed", "failed")
    slot = f"verification:{verification.get('attempt') or 0}"  # one reply per attempt
    return "resolution:0" in slots and (not followup or slot in slots)


def view(doc: Doc) -> IncidentView:
    alerts = [
        AlertView(
            fingerprint=a["fingerprint"],
            alertname=a["alertname"],
            status=a["status"],
            labels=a["labels"],
            annotations=a["annotations"],
            starts_at=a["starts_at"],
            ends_at=a["ends_at"],
        )
        for a in doc["alerts"].values()
    ]
    return IncidentView(
        id=doc["id"],
        provider=doc["provider"],
        state=doc["state"],
        opened_at=doc["opened_at"],
        resolved_at=doc["resolved_at"],
        recovered_at=doc["recovered_at"],
        last_success_before=doc["last_success_before"],
        lineage_failure=copy.deepcopy(doc.get("lineage_failure")),
        alerts=alerts,
        actions=[record_view(r) for r in doc["actions"]],
        timeline=copy.deepcopy(doc["timeline"]),
        notes=copy.deepcopy(doc["notes"]),
        evidence=copy.deepcopy(doc.get("evidence", [])),
        truncated_alerts=_incomplete(doc),
        alert_counts=alert_counts(doc),
        detection=copy.deepcopy(doc.get("detection")),
        verification=copy.deepcopy(doc.get("verification")),
        approvals=approval_steps(doc),
    )


def _incomplete(doc: Mapping[str, Any]) -> int:
    truncation = doc.get("truncation") or {}
    if not truncation or truncation.get("completed_at") is not None:
        return 0
    return int(truncation.get("truncated_alerts", 0))


def record_view(record: Mapping[str, Any]) -> ActionRecord:
    return ActionRecord(
        action=record["action"],
        target=record["target"],
        resource=record["resource"],
        phase=record["phase"],
        result=record["result"],
        at=record["at"],
        previous=record.get("previous"),
        detail=record.get("detail") or {},
        error=record.get("error"),
        reverts=record.get("reverts"),
    )


def summary(doc: Doc) -> Doc:
    """The list view of an incident (GET /api/v1/incidents)."""
    return {
        "id": doc["id"],
        "provider": doc["provider"],
        "state": doc["state"],
        "opened_at": doc["opened_at"],
        "recovered_at": doc["recovered_at"],
        "resolved_at": doc["resolved_at"],
        "alerts": sorted({a["alertname"] for a in doc["alerts"].values()}),
        "firing": alert_counts(doc)["firing"],
        "alert_counts": alert_counts(doc),
        "actions": len(doc["actions"]),
        "pending_steps": len(pending_work(doc)),
        "awaiting_approval": len(awaiting_approval(doc)),
    }


def detail(doc: Doc) -> Doc:
    """The full view of an incident (GET /api/v1/incidents/{id})."""
    body = summary(doc)
    body.update(
        {
            "last_success_before": doc["last_success_before"],
            "detection": doc.get("detection"),
            "verification": doc.get("verification"),
            "lineage_failure": doc.get("lineage_failure"),
            "alerts": list(doc["alerts"].values()),
            "playbooks": doc["playbooks"],
            "steps": doc["work"],
            "actions": doc["actions"],
            "timeline": doc["timeline"],
            "timeline_dropped": doc.get("timeline_dropped", 0),
            "notes": doc["notes"],
            "evidence": doc.get("evidence", []),
            "recovery": doc["recovery"],
            "group_keys": doc["group_keys"],
            "truncation": doc.get("truncation"),
        }
    )
    return body
