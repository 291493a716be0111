"""Runbook 4's workaround: disable the affected feeds and publish the catalog to Airflow.

The runbook edits ``config/external_providers.yml`` and runs ``airflow variables
set external_provider_config ...``; this action does the same through Airflow's
variables API (``/api/v1`` on Airflow 2, ``/api/v2`` on 3): it reads the
Variable, sets ``enabled: false`` for the incident's provider in the catalog it
holds (feedguard's own catalog when the Variable is absent or not a JSON
catalog) and writes it back.  One target per provider, so two incidents disable
two feeds; recovery restores the Variable's previous value exactly when nothing
changed it since, else puts back only this feed's flag, and leaves alone a feed
an operator re-enabled or edited meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowError
from feedguard.core.catalog import Catalog

from ..plugins import JSON, ActionError, Outcome, StepContext, Target
from .airflow_common import airflow_error
from .params import check_params


def catalog_document(catalog: Catalog) -> dict[str, Any]:
    """The catalog as the JSON document the Variable holds."""
    return catalog.model_dump(mode="json")


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


def _same(a: str | None, b: JSON) -> bool:
    """Equal values; JSON compared parsed: Airflow 3 stores a JSON value re-serialised
    (``{"a": 1}`` for ``{ "a":1 }``), so the text read back is not the text written."""
    if a == b:
        return True
    if a is None or not isinstance(b, str):
        return False
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def _parse(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("providers"), list):
        return None
    return document


def _entry(document: dict[str, Any], provider: str) -> dict[str, Any] | None:
    for item in document["providers"]:
        if isinstance(item, dict) and item.get("name") == provider:
            return item
    return None


class DisableFeeds:
    name: ClassVar[str] = "disable_feeds"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "airflow"

    def __init__(self, client: AirflowClient, catalog: Catalog, variable: str) -> None:
        self._client = client
        self._catalog = catalog
        self._variable = variable

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        check_params(self.name, ctx.params, ())
        provider = ctx.provider.name
        return [
            Target(
                description=f"disable feed {provider} in Airflow Variable {self._variable}",
                resource=f"airflow:variable:{self._variable}:{provider}",
                params={"variable": self._variable, "provider": provider},
            )
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        provider = str(target.params["provider"])
        what = f"disable feed {provider} in Variable {self._variable}"
        current = await self._get(what)
        document = _parse(current) or catalog_document(self._catalog)
        entry = _entry(document, provider)
        if entry is None:
            raise ActionError(
                f"{what}: the catalog in the Variable has no provider {provider!r}",
                retryable=False,
            )
        intent = ctx.intents.get(target)
        if intent is not None and _same(current, intent.new):
            # Written by an earlier attempt (maybe a replica that died before recording).
            return Outcome(
                previous=intent.previous,
                detail={"note": "written by an earlier attempt"},
                changed=False,
            )
        if entry.get("enabled") is False:
            # Disabled by someone else already: nothing to do, nothing to undo.
            return Outcome(
                previous={"value": current, "published": current, "was_enabled": False},
                detail={"variable": self._variable, "note": f"feed {provider} already disabled"},
                changed=False,
            )
        entry["enabled"] = False
        published = _dump(document)
        previous: dict[str, JSON] = {"value": current, "published": published, "was_enabled": True}
        await ctx.intents.record(target, previous, published)  # before the write
        try:
            await self._client.set_variable(
                self._variable, published, "provider catalog (feedguard disable_feeds)"
            )
        except AirflowError as exc:
            raise airflow_error(exc, what) from exc
        return Outcome(
            previous=previous,
            detail={"variable": self._variable, "disabled": provider},
            changed=True,
        )

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        provider = str(target.params["provider"])
        what = f"re-enable feed {provider} in Variable {self._variable}"
        if not isinstance(previous, dict) or "published" not in previous:
            raise ActionError(f"{what}: recorded state {previous!r} is not one", retryable=False)
        if previous.get("was_enabled") is False:
            return Outcome(
                previous=None, detail={"note": "was disabled before; kept"}, changed=False
            )
        current = await self._get(what)
        detail: dict[str, JSON] = {"variable": self._variable, "provider": provider}
        if _same(current, previous["value"]):
            # Restored by an earlier attempt (maybe before a crash): nothing left to do.
            detail["note"] = "already the value from before"
            return Outcome(previous=current, detail=detail, changed=False)
        if _same(current, previous["published"]):
            # Nothing changed it since: the value from before, exactly.
            try:
                if previous["value"] is None:
                    await self._client.delete_variable(self._variable)
                else:
                    await self._client.set_variable(self._variable, str(previous["value"]))
            except AirflowError as exc:
                raise airflow_error(exc, what) from exc
            detail["restored"] = "previous value" if previous["value"] is not None else "absent"
            return Outcome(previous=current, detail=detail, changed=True)
        document = _parse(current)
        entry = _entry(document, provider) if document is not None else None
        if document is None or entry is None or entry.get("enabled") is not False:
            return Outcome(
                previous=current,
                detail=detail,
                changed=False,
                left_alone=f"Variable {self._variable} was changed by someone else since "
                f"and feed {provider} is no longer as feedguard left it; kept",
            )
        # Someone changed other parts since: only this feed's flag goes back.
        entry["enabled"] = True
        try:
            await self._client.set_variable(self._variable, _dump(document))
        except AirflowError as exc:
            raise airflow_error(exc, what) from exc
        detail["restored"] = "feed flag only (the Variable changed elsewhere since)"
        return Outcome(previous=current, detail=detail, changed=True)

    async def _get(self, what: str) -> str | None:
        try:
            return await self._client.get_variable(self._variable)
        except AirflowError as exc:
            raise airflow_error(exc, what) from exc
