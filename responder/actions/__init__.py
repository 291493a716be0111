"""The runbook's actions (runbook sections 3 and 5), one module per action.

``open_actions`` is the only entry point the core uses: it creates the clients
(Kubernetes API, Airflow, runtime-config HTTP session) and yields the actions by
playbook name; leaving the context closes the clients.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

from exporter.catalog import Catalog

from ..plugins import Action
from .settings import ActionsSettings


@contextlib.asynccontextmanager
async def open_actions(
    settings: ActionsSettings, catalog: Catalog
) -> AsyncIterator[Mapping[str, Action]]:
    # Filled in by the actions work (issue 5); the core only relies on this signature.
    yield {}
