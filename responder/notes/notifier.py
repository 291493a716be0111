"""The Notifier the core calls: render a note, deliver it, say what to keep."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from feedguard.core.log import get_logger

from ..plugins import JSON, NoteRequest
from .render import NoteRenderer
from .settings import NotesSettings
from .slack import Delivered, Delivery, Metadata, NoteDeliveryError, current_progress

log = get_logger("responder.notes")

# Keys this notifier keeps in incident.notes (the core merges what post returns).
THREAD_TS = "slack_ts"
THREAD_CHANNEL = "slack_channel"
LAST_NOTE_AT = "last_note_at"
# Slack message metadata on every note: which incident and slot it is.
EVENT_TYPE = "feedguard_note"


def note_metadata(request: NoteRequest) -> dict[str, Any]:
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {
            "incident_id": request.incident.id,
            "note": f"{request.kind}:{request.slot}",
        },
    }


class SlackNotifier:
    def __init__(self, settings: NotesSettings, renderer: NoteRenderer, delivery: Delivery) -> None:
        self.settings = settings
        self.renderer = renderer
        self.delivery = delivery

    def _where(self, request: NoteRequest) -> tuple[str, str | None]:
        """The channel and the thread (None: top level) a note goes to."""
        notes = request.incident.notes
        thread_ts = notes.get(THREAD_TS) if self.delivery.threads else None
        if thread_ts:
            # Replies must name the channel the thread lives in; Slack answered with its ID.
            return str(notes.get(THREAD_CHANNEL) or self.settings.channel), str(thread_ts)
        return self.settings.channel, None

    async def post(self, request: NoteRequest) -> Mapping[str, JSON]:
        incident = request.incident
        bound = log.bind(incident_id=incident.id, kind=request.kind, slot=request.slot)
        text, from_template = self.renderer.render(request)
        channel, thread_ts = self._where(request)
        broadcast = request.kind == "resolution" and self.settings.broadcast_resolution

        reporting = current_progress.set(request.progress)
        try:
            async with asyncio.timeout(self.settings.post_deadline_seconds):
                delivered = await self.delivery.send(
                    text,
                    channel=channel,
                    thread_ts=thread_ts,
                    broadcast=broadcast,
                    metadata=note_metadata(request),
                )
        except TimeoutError:
            bound.error("note not delivered", error="deadline exceeded")
            raise NoteDeliveryError(
                f"Slack note not delivered within {self.settings.post_deadline_seconds:g}s"
            ) from None
        except NoteDeliveryError as exc:
            bound.error("note not delivered", error=str(exc), slack_error=exc.code)
            raise
        finally:
            current_progress.reset(reporting)

        bound.info(
            "note posted",
            channel=delivered.channel or channel,
            ts=delivered.ts,
            thread_ts=thread_ts,
            from_template=from_template,
        )
        return self._kept(request, delivered, channel, thread_ts)

    async def find(self, request: NoteRequest, since: float) -> Mapping[str, JSON] | None:
        channel, thread_ts = self._where(request)
        wanted = note_metadata(request)

        def match(metadata: Metadata) -> bool:
            return bool(
                metadata.get("event_type") == wanted["event_type"]
                and metadata.get("event_payload") == wanted["event_payload"]
            )

        # Replicas' clocks and Slack's differ a little: look a minute further back.
        async with asyncio.timeout(self.settings.post_deadline_seconds):
            delivered = await self.delivery.find(
                channel=channel, thread_ts=thread_ts, oldest=since - 60.0, match=match
            )
        log.info(
            "looked for an unconfirmed note in Slack",
            incident_id=request.incident.id,
            kind=request.kind,
            slot=request.slot,
            found=delivered is not None,
            ts=delivered.ts if delivered else None,
        )
        if delivered is None:
            return None
        return self._kept(request, delivered, channel, thread_ts)

    @staticmethod
    def _kept(
        request: NoteRequest, delivered: Delivered, channel: str, thread_ts: str | None
    ) -> dict[str, JSON]:
        kept: dict[str, JSON] = {LAST_NOTE_AT: request.now}
        if delivered.ts and not thread_ts:
            # The first note that reached Slack starts the thread (normally the initial one).
            kept[THREAD_TS] = delivered.ts
            kept[THREAD_CHANNEL] = delivered.channel or channel
        return kept
