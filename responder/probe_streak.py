"""The health-probe streak of a recovering incident: each probe counted, and once
``probes_required`` succeed in a row the playbooks' resolved steps are planned.

Pure, like ``transitions``: ``recovery`` does the probing and the store writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from . import approval
from . import incidents as inc
from .config import Playbook
from .transitions import step_doc

Doc = dict[str, Any]


class ProbeResult(NamedTuple):
    success: bool
    error: str
    status: int


def recovery_probe(
    doc: Doc,
    result: ProbeResult | None,
    now: float,
    *,
    playbooks: Mapping[str, Playbook],
    probes_required: int,
    probe_interval: float,
) -> bool | None:
    """Count a health probe (``result`` None: the provider has none) towards recovery.

    None when the incident is not waiting to recover (nothing changed); otherwise
    whether the streak is complete and the resolved steps were planned."""
    if doc["state"] != inc.RECOVERING:
        return None
    rec = doc.get("recovery") or {}
    if rec.get("steps_enqueued"):
        return None
    if result is None:
        inc.add_event(doc, now, "no health probe configured: recovering on resolve")
        streak = probes_required
    elif result.success:
        streak = rec.get("streak", 0) + 1
        inc.add_event(doc, now, f"probe {streak}/{probes_required} ok (HTTP {result.status})")
    else:
        streak = 0
        inc.add_event(doc, now, f"probe failed: {result.error}, streak reset")
    rec["streak"] = streak
    rec["next_probe_at"] = now + probe_interval
    if streak >= probes_required:
        rec["steps_enqueued"] = True
        doc["recovered_at"] = now
        approval.withdraw_firing(doc, now)
        count = 0
        for name in doc["playbooks"]:
            playbook = playbooks.get(name)
            if playbook is not None:
                count += inc.enqueue(
                    doc, "recovery", name, [step_doc(s) for s in playbook.resolved]
                )
        inc.add_event(doc, now, f"provider recovered: running {count} resolved steps")
    doc["recovery"] = rec
    return bool(rec.get("steps_enqueued"))
