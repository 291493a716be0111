"""Situation notes (runbook sections 2 and 6): templates and Slack delivery.

``open_notifier`` is the only entry point the core uses; it yields None when
notes are not configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp

from feedguard.core.catalog import Catalog
from feedguard.core.log import get_logger
from feedguard.core.tracing import Tracing

from ..clients import ClientChecks
from ..plugins import Notifier
from .notifier import SlackNotifier
from .render import NoteRenderer
from .settings import NotesSettings
from .slack import Delivery, NoteDeliveryError, WebApiDelivery, WebhookDelivery

log = get_logger("responder.notes")

__all__ = [
    "NoteDeliveryError",
    "NotesSettings",
    "SlackNotifier",
    "open_notifier",
]


@contextlib.asynccontextmanager
async def open_notifier(
    settings: NotesSettings,
    catalog: Catalog,
    tracing: Tracing | None = None,
    checks: ClientChecks | None = None,
) -> AsyncIterator[Notifier | None]:
    """The Slack notifier, or None when notes are disabled or no Slack is configured.

    Reads the token or webhook URL and compiles every template first, so a
    missing secret file or a broken override template stops start-up with a
    ConfigError instead of failing the first incident's note.  With ``checks``,
    the Web API client registers its start-up check (``auth.test``); an incoming
    webhook has no endpoint to check without posting, so it has none.
    """
    if not settings.enabled:
        log.info("situation notes disabled (notes.enabled: false)")
        yield None
        return
    token = settings.token()
    webhook = None if token else settings.webhook()
    if not token and not webhook:
        log.warning(
            "situation notes off: set FEEDGUARD_NOTES_SLACK_TOKEN (or notes.slack_token_file) "
            "or FEEDGUARD_NOTES_WEBHOOK_URL (or notes.webhook_url_file)"
        )
        yield None
        return
    settings.check_startup()
    renderer = NoteRenderer(settings, catalog)
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)
    # With tracing on, each Slack call is a child span of the note being posted.
    trace_configs = tracing.trace_configs() if tracing else []
    async with aiohttp.ClientSession(timeout=timeout, trace_configs=trace_configs) as session:
        delivery: Delivery
        if token:
            web_api = WebApiDelivery(token, settings, session)
            if checks is not None:
                checks.add("slack", web_api.check)
            delivery = web_api
            log.info("situation notes via chat.postMessage", channel=settings.channel)
        else:
            assert webhook is not None
            delivery = WebhookDelivery(webhook, settings, session)
            log.info("situation notes via incoming webhook (no threads)")
        yield SlackNotifier(settings, renderer, delivery)
