"""Situation notes (runbook sections 2 and 6): templates and Slack delivery.

``open_notifier`` is the only entry point the core uses; it yields None when
notes are not configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from exporter.catalog import Catalog

from ..plugins import Notifier
from .settings import NotesSettings


@contextlib.asynccontextmanager
async def open_notifier(
    settings: NotesSettings, catalog: Catalog
) -> AsyncIterator[Notifier | None]:
    # Filled in by the Slack work (issue 6); the core only relies on this signature.
    yield None
