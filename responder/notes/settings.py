"""Settings of the situation notes: the ``notes:`` section of responder.yml."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NotesSettings:
    """Filled in by the Slack work (issue 6): channel, token, templates, cadence."""

    update_interval_seconds: float = 3600.0
