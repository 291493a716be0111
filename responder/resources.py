"""Resources shared across incidents (a ConfigMap, a DAG): who holds a change, and the
original value a revert restores.  Pure updaters for ``Store.update`` on the
``resource`` kind (see ``plugins.py``, "reference counting").

The first incident to claim a resource applies the change and keeps the original;
later ones join it; only the last holder's revert restores the original.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]


def fresh(resource: str) -> Doc:
    return {"resource": resource, "holders": [], "original": None, "applied": False, "live": True}


def claim(
    resource: str, incident_id: str
) -> Callable[[Doc | None], tuple[Doc, tuple[bool, bool, Any, list[str]]]]:
    def change(doc: Doc | None) -> tuple[Doc, tuple[bool, bool, Any, list[str]]]:
        doc = doc or fresh(resource)
        if incident_id not in doc["holders"]:
            doc["holders"].append(incident_id)
        doc["live"] = True
        first = doc["holders"][0] == incident_id
        # applied and first: this incident applied it before a restart, or an earlier
        # incident's revert failed; either way the recorded original is kept.
        return doc, (first, doc["applied"], doc["original"], list(doc["holders"]))

    return change


def applied(incident_id: str, previous: Any) -> Callable[[Doc | None], tuple[Doc | None, None]]:
    def change(doc: Doc | None) -> tuple[Doc | None, None]:
        if doc is None:
            return None, None
        if not doc["applied"]:
            doc["applied"] = True
            doc["original"] = previous
            doc["applied_by"] = incident_id
        return doc, None

    return change


def drop_claim(incident_id: str) -> Callable[[Doc | None], tuple[Doc | None, None]]:
    def change(doc: Doc | None) -> tuple[Doc | None, None]:
        if doc is None or incident_id not in doc["holders"]:
            return None, None
        doc["holders"].remove(incident_id)
        doc["live"] = bool(doc["holders"]) or doc["applied"]
        return doc, None

    return change


def release(
    incident_id: str,
) -> Callable[[Doc | None], tuple[Doc | None, tuple[bool, bool, Any, list[str]]]]:
    def change(doc: Doc | None) -> tuple[Doc | None, tuple[bool, bool, Any, list[str]]]:
        if doc is None:
            return None, (True, False, None, [])
        if incident_id in doc["holders"]:
            doc["holders"].remove(incident_id)
        return doc, (not doc["holders"], doc["applied"], doc["original"], list(doc["holders"]))

    return change


def reverted(doc: Doc | None) -> tuple[Doc | None, None]:
    if doc is None or doc["holders"]:
        return None, None  # claimed again meanwhile: that incident now owns the change
    doc.update(applied=False, original=None, applied_by=None, live=False)
    return doc, None
