"""Runs one playbook step (a work item) of one incident, target by target.

Owns retries, timeouts, circuit breakers, dry run and the cross-incident
reference counting of resources described in ``plugins.py``: an ``{action: …}``
step is ``apply.apply_step``, a ``{revert: …}`` step ``revert.revert_step``, both on
what ``steps.StepKit`` provides.  Every result is written to the ledger as soon as
it is known, so a restart resumes after the last recorded target.
"""

from __future__ import annotations

from typing import Any

from feedguard.core.catalog import Provider

from .apply import apply_step
from .revert import revert_step
from .steps import LeaseLost, Renew, StepKit

__all__ = ["Executor", "LeaseLost"]

Doc = dict[str, Any]


class Executor(StepKit):
    async def run_item(self, doc: Doc, item: Doc, provider: Provider, renew: Renew) -> bool:
        """Run one step; True when every target ended well (success, dry run, skipped)."""
        if item.get("action"):
            return await apply_step(self, doc, item, provider, renew)
        return await revert_step(self, doc, item, provider, renew)
