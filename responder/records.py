"""Action records: the ledger entry for one target of one step, and the pure changes
that add one to an incident and pick what a step still has to do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import incidents as inc
from .intents import drop_intent
from .plugins import Target, intent_key

Doc = dict[str, Any]
FINAL = ("success", "dry_run", "skipped")  # results a restart does not redo


def new_record(
    item: Doc,
    action: str,
    target: Target,
    result: str,
    at: float,
    *,
    previous: Any = None,
    detail: Mapping[str, Any] | None = None,
    error: str | None = None,
    reversible: bool = False,
    reverts: str | None = None,
) -> Doc:
    return {
        "key": f"{item['id']}|{target.description}",
        "work": item["id"],
        "action": action,
        "target": target.description,
        "resource": target.resource,
        "target_params": dict(target.params),
        "step_params": item["params"],
        "phase": "firing" if item["phase"] == "firing" else "recovery",
        "result": result,
        "at": at,
        "previous": previous,
        "detail": dict(detail or {}),
        "error": error,
        "reversible": reversible,
        "reverted": False,
        "reverts": reverts,
    }


def add_record(doc: Doc, item: Doc, record: Doc, event: str) -> bool:
    """Add (or, for a retried failure, replace) a step's record for one target and mark
    what a revert undid; False when a final result is already recorded."""
    for index, existing in enumerate(doc["actions"]):
        if existing.get("work") == item["id"] and existing["target"] == record["target"]:
            if existing["result"] in FINAL:
                return False  # already recorded by an earlier run
            doc["actions"][index] = record  # a retried failure: the new result wins
            break
    else:
        doc["actions"].append(record)
    if (
        item["phase"] == "recovery"
        and record.get("reverts") is not None
        and record["result"] in FINAL  # a failed undo stays to do: retried, not forgotten
    ):
        for original in doc["actions"]:
            if original.get("key") == record["reverts"]:
                original["reverted"] = True
                # Undone (or left to its last holder): a later apply reads afresh.
                drop_intent(doc, intent_key(Target(original["target"], original["resource"])))
    inc.add_event(
        doc,
        record["at"],
        event,
        action=record["action"],
        target=record["target"],
        result=record["result"],
        **({"error": record["error"]} if record.get("error") else {}),
    )
    return True


def done_targets(doc: Doc, item: Doc) -> set[str]:
    """Targets of this step already finished (before a restart)."""
    return {
        r["target"] for r in doc["actions"] if r.get("work") == item["id"] and r["result"] in FINAL
    }


def revert_candidates(doc: Doc, item: Doc) -> list[Doc]:
    """The firing records a revert step undoes, newest first, less those it already did."""
    which = item["revert"]
    done = {
        r.get("reverts")
        for r in doc["actions"]
        if r.get("work") == item["id"] and r["result"] in FINAL
    }
    candidates = [
        r
        for r in doc["actions"]
        if r["phase"] == "firing"
        and r["result"] in ("success", "dry_run")
        and r.get("reversible")
        and not r.get("reverted")
        and (which == "all" or r["action"] == which)
        and r["key"] not in done
    ]
    return list(reversed(candidates))
