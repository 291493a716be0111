"""Render one note: the kind's template, or a plain note when the template fails."""

from __future__ import annotations

import re

from jinja2.sandbox import SandboxedEnvironment

from feedguard.core.catalog import Catalog
from feedguard.core.log import get_logger

from ..plugins import NoteRequest
from .context import build_context
from .settings import NotesSettings
from .templates import TEMPLATE_NAMES, build_environment, format_time, render_template, slack_escape

log = get_logger("responder.notes")

# Slack truncates message text beyond 40,000 characters; stay clear of it.
MAX_TEXT = 39_000
_BLANK_RUNS = re.compile(r"\n{3,}")

_TITLES = {
    "initial": "Incident opened",
    "update": "Update",
    "resolution": "Resolved",
    "verification": "Backfill verification",
    "approval": "Approval needed",
}


class NoteRenderer:
    def __init__(self, settings: NotesSettings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.env: SandboxedEnvironment = build_environment(settings.templates_dir, settings.tz)

    def render(self, request: NoteRequest) -> tuple[str, bool]:
        """The note's text and whether it came from its template (False: the fallback)."""
        name = TEMPLATE_NAMES[request.kind]
        provider = self.catalog.get(request.incident.provider)
        try:
            context = build_context(
                request, provider, interval_seconds=self.settings.update_interval_seconds
            )
            text = render_template(self.env, name, context)
        except Exception as exc:
            # Whatever goes wrong here (SecurityError from the sandbox, an undefined
            # variable, a failing expression in an override) must not silence the
            # incident: log it and post the plain note instead.
            log.error(
                "note template failed, posting a plain note",
                template=name,
                incident_id=request.incident.id,
                kind=request.kind,
                slot=request.slot,
                error=f"{type(exc).__name__}: {exc}",
            )
            return self.fallback(request), False
        text = _BLANK_RUNS.sub("\n\n", text)
        if not text.strip():
            log.error(
                "note template rendered nothing", template=name, incident_id=request.incident.id
            )
            return self.fallback(request), False
        return _truncate(text), True

    def fallback(self, request: NoteRequest) -> str:
        """A plain note built without templates: always renders, always escaped."""
        tz = self.settings.tz
        incident = request.incident
        title = _TITLES[request.kind] + (f" {request.slot}" if request.kind == "update" else "")
        lines = [
            f"[{format_time(request.now, tz)}] {title}: external data incident on "
            f"{slack_escape(incident.provider)} (id {slack_escape(incident.id)}, "
            f"state {slack_escape(incident.state)}).",
        ]
        alerts = sorted(incident.alerts, key=lambda a: a.starts_at)
        if alerts:
            first = alerts[0]
            lines.append(
                f"First alert: {slack_escape(first.alertname)} since "
                f"{format_time(first.starts_at, tz)}."
            )
        for step in request.incident.approvals:
            if step["status"] == "awaiting_approval":
                lines.append(f"Step {slack_escape(str(step['id']))} awaits approval.")
        if request.incident_url:
            lines.append(f"Incident page: {slack_escape(request.incident_url)}")
        if request.next_update_at is not None:
            lines.append(f"Next update: {format_time(request.next_update_at, tz)}.")
        lines.append("(The note template failed; details are in the responder's log.)")
        return "\n".join(lines)


def _truncate(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    # Cut at a line end so no entity or <link|text> is split in half.
    head = text[: MAX_TEXT - 20].rsplit("\n", 1)[0]
    return head.rstrip() + "\n… (truncated)"
