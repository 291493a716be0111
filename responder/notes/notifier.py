"""The Notifier the core calls: render a note, deliver it, say what to keep."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from feedguard.core.log import get_logger

from ..plugins import JSON, NoteRequest
from .render import NoteRenderer
from .settings import NotesSettings
from .slack import Delivery, NoteDeliveryError

log = get_logger("responder.notes")

# Keys this notifier keeps in incident.notes (the core merges what post returns).
THREAD_TS = "slack_ts"
THREAD_CHANNEL = "slack_channel"
LAST_NOTE_AT = "last_note_at"


class SlackNotifier:
    def __init__(self, settings: NotesSettings, renderer: NoteRenderer, delivery: Delivery) -> None:
        self.settings = settings
        self.renderer = renderer
        self.delivery = delivery

    async def post(self, request: NoteRequest) -> Mapping[str, JSON]:
        incident = request.incident
        bound = log.bind(incident_id=incident.id, kind=request.kind, slot=request.slot)
        text, from_template = self.renderer.render(request)

        thread_ts = incident.notes.get(THREAD_TS) if self.delivery.threads else None
        channel = self.settings.channel
        if thread_ts:
            # Replies must name the channel the thread lives in; Slack answered with its ID.
            channel = str(incident.notes.get(THREAD_CHANNEL) or channel)
        broadcast = request.kind == "resolution" and self.settings.broadcast_resolution

        try:
            async with asyncio.timeout(self.settings.post_deadline_seconds):
                delivered = await self.delivery.send(
                    text,
                    channel=channel,
                    thread_ts=str(thread_ts) if thread_ts else None,
                    broadcast=broadcast,
                )
        except TimeoutError:
            bound.error("note not delivered", error="deadline exceeded")
            raise NoteDeliveryError(
                f"Slack note not delivered within {self.settings.post_deadline_seconds:g}s"
            ) from None
        except NoteDeliveryError as exc:
            bound.error("note not delivered", error=str(exc), slack_error=exc.code)
            raise

        bound.info(
            "note posted",
            channel=delivered.channel or channel,
            ts=delivered.ts,
            thread_ts=thread_ts,
            from_template=from_template,
        )
        kept: dict[str, JSON] = {LAST_NOTE_AT: request.now}
        if delivered.ts and not thread_ts:
            # The first note that reached Slack starts the thread (normally the initial one).
            kept[THREAD_TS] = delivered.ts
            kept[THREAD_CHANNEL] = delivered.channel or channel
        return kept
