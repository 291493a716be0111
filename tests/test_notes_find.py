"""Finding a note again after its poster died: the notifier against the local Slack.

Every note carries message metadata (``feedguard_note``, the incident and the
slot); ``find`` reads ``conversations.history`` (top-level notes) or
``conversations.replies`` (notes in the thread) with ``include_all_metadata`` and
answers what ``post`` would have returned, or None.  An incoming webhook cannot
look (``CannotConfirm``); a token without the history scope fails the lookup with
Slack's ``missing_scope``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from feedguard.core.catalog import Catalog
from feedguard.responder.notes import NoteDeliveryError, open_notifier
from feedguard.responder.notes.slack import FIND_PAGE_SIZE
from feedguard.responder.plugins import CannotConfirm, Notifier

from .conftest import make_catalog
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.incidents import HOUR, T0, incident, request, with_notes
from .test_notes_slack import TOKEN, settings_for


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog({"ISO-NE": {"datasets": ["lmp"]}})


@pytest.fixture
async def notifier(slack: FakeSlack, catalog: Catalog) -> AsyncIterator[Notifier]:
    async with open_notifier(settings_for(slack), catalog) as opened:
        assert opened is not None
        yield opened


def paths(slack: FakeSlack) -> list[str]:
    return [r.path.removeprefix("/api/") for r in slack.requests]


async def test_every_note_carries_its_metadata(slack: FakeSlack, notifier: Notifier) -> None:
    view = incident(provider="ISO-NE", id="inc-7")
    await notifier.post(request("initial", view, T0))
    (message,) = slack.messages
    assert message.metadata == {
        "event_type": "feedguard_note",
        "event_payload": {"incident_id": "inc-7", "note": "initial:0"},
    }


async def test_a_top_level_note_is_found_in_the_channel_history(
    slack: FakeSlack, notifier: Notifier
) -> None:
    since = time.time()
    view = incident(provider="ISO-NE", id="inc-7")
    kept = await notifier.post(request("initial", view, T0))
    # Other messages around it: another incident's note, someone's chatter.
    await notifier.post(request("initial", incident(provider="ISO-NE", id="inc-8"), T0))
    slack.requests.clear()

    found = await notifier.find(request("initial", view, T0 + 5), since)
    assert found == {**kept, "last_note_at": T0 + 5}
    # The channel name is turned into its ID once; history is read by ID.
    assert paths(slack) == ["conversations.list", "conversations.history"]

    assert await notifier.find(request("initial", incident(id="inc-9"), T0), since) is None
    assert paths(slack)[-1] == "conversations.history"  # the ID is remembered


async def test_a_reply_is_found_in_its_thread(slack: FakeSlack, notifier: Notifier) -> None:
    since = time.time()
    view = incident(provider="ISO-NE", id="inc-7")
    view = with_notes(view, await notifier.post(request("initial", view, T0)))
    await notifier.post(request("update", view, T0 + HOUR, slot=1))
    update = slack.messages[-1]
    assert update.thread_ts == view.notes["slack_ts"]
    slack.requests.clear()

    found = await notifier.find(request("update", view, T0 + HOUR, slot=1), since)
    assert found == {"last_note_at": T0 + HOUR}  # a reply does not restart the thread
    assert paths(slack) == ["conversations.replies"]  # the thread's channel is an ID
    assert await notifier.find(request("update", view, T0 + HOUR, slot=2), since) is None


async def test_only_messages_since_the_attempt_count(slack: FakeSlack, notifier: Notifier) -> None:
    view = incident(provider="ISO-NE", id="inc-7")
    await notifier.post(request("initial", view, T0))
    later = float(slack.messages[-1].ts) + 3600
    assert await notifier.find(request("initial", view, T0), later) is None


async def test_history_is_read_page_by_page(slack: FakeSlack, notifier: Notifier) -> None:
    since = time.time()
    view = incident(provider="ISO-NE", id="inc-7")
    await notifier.post(request("initial", view, T0))
    for n in range(FIND_PAGE_SIZE + 5):  # newer messages push the note to page two
        await notifier.post(request("initial", incident(id=f"other-{n}"), T0))
    slack.requests.clear()
    found = await notifier.find(request("initial", view, T0), since)
    assert found is not None
    assert paths(slack) == ["conversations.list", "conversations.history", "conversations.history"]


async def test_a_token_without_the_history_scope_fails_the_lookup(
    slack: FakeSlack, notifier: Notifier
) -> None:
    slack.scopes.discard("channels:history")
    with pytest.raises(NoteDeliveryError, match="missing_scope") as failed:
        await notifier.find(request("initial", incident(provider="ISO-NE"), T0), time.time())
    assert TOKEN not in str(failed.value)


async def test_an_incoming_webhook_cannot_look(slack: FakeSlack, catalog: Catalog) -> None:
    settings = settings_for(slack, slack_token=None, webhook_url=slack.webhook_url)
    async with open_notifier(settings, catalog) as notifier:
        assert notifier is not None
        with pytest.raises(CannotConfirm, match="incoming webhook"):
            await notifier.find(request("initial", incident(provider="ISO-NE"), T0), 0.0)
    assert slack.requests == []
