"""Alert transitions: what a firing or resolved alert does to an incident document
(recorded in full or counted beyond the sample, playbooks planned, recovery begun),
and Alertmanager's truncated groups that leave the picture incomplete.

Every function here is pure: it changes the document it is given (a fresh copy
read by ``Store.update``, which may call it more than once) and returns what the
caller needs to know, without I/O or clocks.  ``intake`` wraps them in store
updates; tests call them directly.  What finished steps and retries do is
``progress``, the health-probe streak ``probe_streak``, note slots ``note_slots``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from . import incidents as inc
from .config import Playbook, Step

Doc = dict[str, Any]

# Transitions applied to an incident, kept so an entry applied again is a no-op.  The
# inbox drops a batch in the transaction that applies it (Store.update_many), so this
# is a second line (the store's own dedupe covers re-sends), and a batch may be larger.
TRANSITIONS_KEPT = 200
# Alerts an incident keeps in full by default (incidents.alert_sample); beyond, counts.
ALERT_SAMPLE = 100
# Alertmanager group keys kept per incident (each group is one; a cap all the same).
GROUP_KEYS_KEPT = 50


class Transition(NamedTuple):
    """One inbox entry routed to an incident: a firing alert with the playbook that
    matched it, or a resolved alert (``playbook`` None)."""

    entry: Doc
    playbook: Playbook | None


class Applied(NamedTuple):
    changed: bool  # the document changed and must be written
    accepted: list[bool]  # per transition; False: a resolved alert the incident does not know
    needs_service: bool  # steps to run, a state to act on, or a new incident's first notes


def apply_transitions(
    doc: Doc,
    transitions: Sequence[Transition],
    now: float,
    *,
    health_probe: bool,
    probes_required: int,
    alert_sample: int = ALERT_SAMPLE,
) -> Applied:
    """Apply one provider's transitions of an inbox batch, in order."""
    before = (doc["state"], len(inc.pending_work(doc)))
    # One set for the batch: a scan of the kept list per transition was ~15% of the
    # scheduler's time under load.
    applied = set(doc["transitions"])
    changed = False
    accepted: list[bool] = []
    for entry, playbook in transitions:
        changed = note_truncation(doc, entry, now) or changed
        if entry.get("truncation_only"):
            accepted.append(True)  # the count is all it brings (webhook.truncation_marker)
            continue
        if playbook is not None:
            changed = fire(doc, entry, playbook, now, applied, alert_sample) or changed
            accepted.append(True)
        else:
            known, did = resolve(doc, entry, now, applied, health_probe, probes_required)
            changed = did or changed
            accepted.append(known)
    pending = len(inc.pending_work(doc))
    needs_service = (
        (doc["state"], pending) != before
        or bool(pending)
        or doc["state"] in (inc.OPEN, inc.RECOVERING)
    )
    return Applied(changed, accepted, needs_service)


def fire(
    doc: Doc,
    entry: Doc,
    playbook: Playbook,
    now: float,
    applied: set[str],
    sample: int = ALERT_SAMPLE,
) -> bool:
    """A firing alert: record it, plan the playbook's firing steps once; True if changed.

    The first ``sample`` alerts are kept in full (``alerts``); beyond them only counts
    (``beyond_sample``): the document stays the same size whatever the storm."""
    if entry["key"] in applied:
        return False
    alert = entry["alert"]
    remember(doc, entry["key"], applied)
    if (
        entry.get("group_key")
        and entry["group_key"] not in doc["group_keys"]
        and len(doc["group_keys"]) < GROUP_KEYS_KEPT
    ):
        doc["group_keys"].append(entry["group_key"])
    fingerprint = alert["fingerprint"]
    existing = doc["alerts"].get(fingerprint)
    name = alert["labels"].get("alertname", "")
    if existing and existing["starts_at"] == alert["startsAt"] and existing["status"] == "resolved":
        inc.add_event(doc, now, "stale firing copy ignored (already resolved)", alertname=name)
        return True
    if existing is None and len(doc["alerts"]) >= sample:
        # Its transition key (fingerprint, startsAt, status) is new, so this is a new
        # firing of an alert outside the sample: counted, paired later with its resolve.
        beyond = inc.beyond_sample(doc)
        beyond["firing"] += 1
        # No fingerprint on the line: a storm's firings merge into one counted entry.
        inc.add_event(doc, now, f"alert firing (beyond the sample): {name}")
    else:
        doc["alerts"][fingerprint] = alert_doc(alert)
        inc.add_event(
            doc,
            now,
            f"alert firing: {name}",
            fingerprint=fingerprint,
            group_key=entry.get("group_key"),
            truncated=entry.get("truncated", 0),
        )
    if playbook.name not in doc["playbooks"]:
        doc["playbooks"].append(playbook.name)
        count = inc.enqueue(doc, "firing", playbook.name, [step_doc(s) for s in playbook.firing])
        inc.add_event(doc, now, f"playbook {playbook.name}: {count} firing steps planned")
    if doc["state"] == inc.RECOVERING and not (doc.get("recovery") or {}).get("steps_enqueued"):
        doc["recovery"] = None
        doc["state"] = inc.STABILISED
        inc.add_event(doc, now, "alert fired again while recovering: probe streak reset")
        doc["state"] = inc.settled_state(doc)
    return True


def resolve(
    doc: Doc,
    entry: Doc,
    now: float,
    applied: set[str],
    health_probe: bool,
    probes_required: int,
) -> tuple[bool, bool]:
    """A resolved alert; (part of this incident, changed).  The last one resolved
    starts recovery."""
    if entry["key"] in applied:
        return True, False
    alert = entry["alert"]
    fingerprint = alert["fingerprint"]
    name = alert["labels"].get("alertname", "")
    if fingerprint not in doc["alerts"]:
        beyond = inc.beyond_sample(doc)
        if beyond["resolved"] >= beyond["firing"]:
            return False, False  # no firing outside the sample left for it to end
        remember(doc, entry["key"], applied)
        beyond["resolved"] += 1
        inc.add_event(doc, now, f"alert resolved (beyond the sample): {name}")
    else:
        remember(doc, entry["key"], applied)
        if _older(alert["startsAt"], doc["alerts"][fingerprint]["starts_at"]):
            # Applied after a newer firing (that one came through the urgent lane).
            why = "stale resolved copy ignored (fired again since)"
            inc.add_event(doc, now, why, alertname=name)
            return True, True
        doc["alerts"][fingerprint] = alert_doc(alert)
        inc.add_event(doc, now, f"alert resolved: {name}", fingerprint=fingerprint)
    if inc.all_resolved(doc) and doc["state"] != inc.RECOVERING:
        doc["state"] = inc.RECOVERING
        doc["recovery"] = {
            "streak": 0,
            "next_probe_at": now,
            "started_at": now,
            "steps_enqueued": False,
        }
        if health_probe:
            why = f"waiting for {probes_required} consecutive successful health probes"
        else:
            why = "no health probe: recovering on resolve"
        inc.add_event(doc, now, f"all alerts resolved: {why}")
    return True, True


def note_truncation(doc: Doc, entry: Doc, now: float) -> bool:
    """Alertmanager left alerts of this group out (``truncatedAlerts``): the incident's
    picture is incomplete until recovery asks Alertmanager.  True if changed."""
    count = int(entry.get("truncated") or 0)
    if count <= 0:
        return False
    current = doc.get("truncation")
    labels = entry.get("group_labels") or {"provider": doc["provider"]}
    if current is not None and current.get("completed_at") is None:
        if current["truncated_alerts"] == count and current["group_labels"] == labels:
            return False
        current.update(truncated_alerts=count, group_labels=labels)
        return True
    doc["truncation"] = {
        "truncated_alerts": count,
        "group_labels": labels,
        "since": now,
        "completed_at": None,
        "waiting": None,
    }
    inc.add_event(
        doc,
        now,
        f"picture incomplete: Alertmanager left out {count} alerts of the group "
        "(max_alerts); recovery asks Alertmanager which still fire",
    )
    return True


def truncation_checked(doc: Doc, now: float, firing: int | None, why: str) -> bool:
    """Record what Alertmanager said of a truncated group before recovery; True when
    recovery may go on (it said none fires).  ``firing`` None: it could not be asked."""
    truncation = doc.get("truncation")
    if truncation is None or truncation.get("completed_at") is not None:
        return True
    if firing == 0:
        truncation["completed_at"] = now
        truncation["waiting"] = None
        inc.add_event(doc, now, f"picture complete: {why}")
        return True
    if truncation.get("waiting") != why:  # one timeline line per distinct reason
        truncation["waiting"] = why
        inc.add_event(doc, now, f"recovery waits: {why}")
    return False


def _older(starts_at: str, than: str) -> bool:
    """Whether an alert's ``startsAt`` is before another's (False when unreadable)."""
    try:
        return dt.datetime.fromisoformat(starts_at) < dt.datetime.fromisoformat(than)
    except (TypeError, ValueError):
        return False


def remember(doc: Doc, key: str, applied: set[str]) -> None:
    """``applied``: the caller's set of the document's kept keys (may hold trimmed ones
    too: an entry seen earlier in the same batch is still a repeat)."""
    applied.add(key)
    transitions = doc["transitions"]
    transitions.append(key)
    if len(transitions) > TRANSITIONS_KEPT:
        del transitions[:-TRANSITIONS_KEPT]


def alert_doc(alert: Doc) -> Doc:
    return {
        "fingerprint": alert["fingerprint"],
        "alertname": alert["labels"].get("alertname", ""),
        "status": alert["status"],
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "starts_at": alert["startsAt"],
        "ends_at": alert["endsAt"],
        "generator_url": alert.get("generatorURL", ""),
    }


def step_doc(step: Step) -> Doc:
    doc: Doc = {"action": step.action, "revert": step.revert, "params": dict(step.params)}
    if step.approval == "required":
        doc["approval"] = "required"
        doc["approval_timeout_minutes"] = step.approval_timeout_minutes
        doc["approval_on_timeout"] = step.approval_on_timeout
    return doc
