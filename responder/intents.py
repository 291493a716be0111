"""Intents on the ledger: what an action is about to change, written before it does.

A replica can die between changing a target and recording the result.  The one
taking over then meets the target already changed; without the intent it would
read that change as the value from before the incident and restore it on
recovery (read_cache left on, for one).  The intent keeps the value replaced on
the incident, keyed by target (resource, else description), until a revert of
that target succeeds.  Pure changes for ``Store.update`` plus the store-backed
``Intents`` the core hands to actions in ``StepContext.intents``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .plugins import Intent, Intents, Target
from .store import Store

Doc = dict[str, Any]


def intents_of(doc: Mapping[str, Any]) -> dict[str, Intent]:
    return {
        key: Intent(
            raw.get("previous"), raw.get("new"), raw.get("at", 0.0), raw.get("detail") or {}
        )
        for key, raw in (doc.get("intents") or {}).items()
        if isinstance(raw, dict)
    }


def put_intent(
    key: str, target: Target, intent: Intent
) -> Callable[[Doc | None], tuple[Doc | None, bool]]:
    def change(doc: Doc | None) -> tuple[Doc | None, bool]:
        if doc is None:
            return None, False
        doc.setdefault("intents", {})[key] = {
            "target": target.description,
            "resource": target.resource,
            "previous": intent.previous,
            "new": intent.new,
            "at": intent.at,
            "detail": dict(intent.detail),
        }
        return doc, True

    return change


def drop_intent(doc: Doc, key: str) -> None:
    """Forget a target's intent (its change was undone): a later apply reads afresh."""
    intents = doc.get("intents")
    if intents:
        intents.pop(key, None)


class LedgerIntents(Intents):
    """``Intents`` of one incident, read from its document and written to the store."""

    def __init__(self, store: Store, doc: Mapping[str, Any], now: float) -> None:
        super().__init__(now, intents_of(doc))
        self._store = store
        self._incident = str(doc["id"])

    async def _save(self, key: str, target: Target, intent: Intent) -> None:
        found = await self._store.update(
            "incident", self._incident, put_intent(key, target, intent)
        )
        if not found:
            raise LookupError(f"incident {self._incident} is gone: intent not recorded")
