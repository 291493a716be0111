"""The Slack notifier against a local Slack (tests/support/fake_slack.py).

Reads back the exact notes of an incident's life from the fake's thread, and
shows the documented failure modes: 429 + Retry-After, error bodies, 5xx,
the incoming-webhook alternative.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feedguard.core.catalog import Catalog
from feedguard.responder.notes import NoteDeliveryError, open_notifier
from feedguard.responder.notes.settings import NotesSettings
from feedguard.responder.plugins import IncidentView, Notifier

from .conftest import make_catalog
from .support.fake_slack import WEBHOOK_PATH, FakeSlack, running_fake_slack
from .support.incidents import HOUR, T0, action, alert, incident, request, with_notes

TOKEN = "xoxb-test-token"
DASHBOARD = "http://localhost:3000/d/feedguard-pipeline-freshness/pipeline-freshness"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog(
        {
            "ISO-NE": {
                "datasets": ["lmp_realtime_5min", "system_load_5min"],
                "fallback_mirror": True,
                "dashboards": [
                    {"title": "Pipeline freshness", "url": f"{DASHBOARD}?var-provider=ISO-NE"}
                ],
            }
        }
    )


def settings_for(slack: FakeSlack, **overrides: Any) -> NotesSettings:
    values: dict[str, Any] = {
        "slack_token": TOKEN,
        "base_url": slack.api_url,
        "request_timeout_seconds": 5.0,
        "max_retry_after_seconds": 5.0,
    }
    values.update(overrides)
    return NotesSettings(**values)


async def post(notifier: Notifier, view: IncidentView, *args: Any, **kw: Any) -> IncidentView:
    kept = await notifier.post(request(*args, **kw))
    return with_notes(view, kept)


async def test_incident_life_reads_back_as_one_thread(slack: FakeSlack, catalog: Catalog) -> None:
    outage = alert(
        "ExternalProviderDown",
        provider="ISO-NE",
        starts_at=T0,
        summary="ISO-NE web services answer 503",
    )
    stale = alert(
        "ExternalDataStale", provider="ISO-NE", dataset="lmp_realtime_5min", starts_at=T0 + 120
    )
    view = incident(provider="ISO-NE", alerts=[outage, stale])

    async with open_notifier(settings_for(slack), catalog) as notifier:
        assert notifier is not None
        # Initial note as the incident opens.
        kept = await notifier.post(request("initial", view, T0 + 180))
        view = with_notes(view, kept)
        assert kept["slack_channel"] == "C0DATAPLAT"
        root = kept["slack_ts"]

        # Stabilising: the actions land, the core asks for the hourly updates.
        view = incident(
            provider="ISO-NE",
            state="stabilised",
            alerts=[outage, stale],
            notes=view.notes,
            actions=[
                action("throttle_api", "throttle API to 50 rps", T0 + 200),
                action("pause_dags", "pause DAG external_data_ingest", T0 + 210),
                action(
                    "trigger_fallback",
                    "trigger DAG external_data_fallback",
                    T0 + 220,
                    result="failure",
                    error="HTTP 409: run already exists",
                ),
            ],
        )
        view = await post(notifier, view, "update", view, T0 + 180 + HOUR, slot=1)
        view = await post(notifier, view, "update", view, T0 + 180 + 2 * HOUR, slot=2)

        # Recovery and resolution.
        resolved_at = T0 + 2 * HOUR + 1800
        view = incident(
            provider="ISO-NE",
            state="resolved",
            resolved_at=resolved_at,
            recovered_at=resolved_at - 300,
            notes=view.notes,
            alerts=[
                alert(
                    "ExternalProviderDown",
                    provider="ISO-NE",
                    starts_at=T0,
                    ends_at=resolved_at - 600,
                    summary="ISO-NE web services answer 503",
                ),
                alert(
                    "ExternalDataStale",
                    provider="ISO-NE",
                    dataset="lmp_realtime_5min",
                    starts_at=T0 + 120,
                    ends_at=resolved_at - 60,
                ),
            ],
            actions=[
                *view.actions,
                action(
                    "pause_dags",
                    "unpause DAG external_data_ingest",
                    resolved_at - 290,
                    phase="recovery",
                ),
                action(
                    "trigger_backfill",
                    "trigger DAG external_data_backfill",
                    resolved_at - 280,
                    phase="recovery",
                    detail={"dag_run_id": "backfill__2026-11-26T03:25"},
                ),
            ],
        )
        await post(notifier, view, "resolution", view, resolved_at)

    thread = slack.thread(root)
    assert [m.ts == root for m in thread] == [True, False, False, False]
    assert all(m.channel == "C0DATAPLAT" for m in thread)
    assert [m.thread_ts for m in thread] == [None, root, root, root]
    assert [m.reply_broadcast for m in thread] == [False, False, False, True]
    assert len(slack.messages) == 4
    assert [m.text for m in thread] == EXPECTED_THREAD
    # Sent as Slack documents for plain bot text: no auto-parsing, no unfurls.
    assert thread[0].args["parse"] == "none"
    assert thread[0].args["unfurl_links"] is False


EXPECTED_THREAD = [
    ":rotating_light: *[2026-11-26 01:03 UTC] ISO-NE: external data incident* · "
    "first alert: *ExternalProviderDown* · dashboards: "
    f"<{DASHBOARD}?var-provider=ISO-NE|Pipeline freshness> · next update 2026-11-26 02:03 UTC\n"
    "*First alert:* ExternalProviderDown (page) since 2026-11-26 01:00 UTC: "
    "ISO-NE web services answer 503\n"
    "*Provider(s):* ISO-NE\n"
    "*Affected datasets:* lmp_realtime_5min\n"
    "*Affected dashboards:*\n"
    f"• <{DASHBOARD}?var-provider=ISO-NE|Pipeline freshness>\n"
    "*Next update:* 2026-11-26 02:03 UTC\n"
    "_Incident inc-0001 · opened 2026-11-26 01:00 UTC · state open_",
    #
    ":hourglass_flowing_sand: *[2026-11-26 02:03 UTC] Update 1: ISO-NE* · open for 1h 03m · "
    "state stabilised\n"
    "*Progress:* 2 alert(s) firing, 0 resolved; stale: lmp_realtime_5min (1h 01m). "
    "3 step(s) since 2026-11-26 01:03 UTC.\n"
    "*Mitigations applied:*\n"
    "• throttle API to 50 rps: success at 2026-11-26 01:03 UTC\n"
    "• pause DAG external_data_ingest: success at 2026-11-26 01:03 UTC\n"
    "• trigger DAG external_data_fallback: failure (HTTP 409: run already exists) "
    "at 2026-11-26 01:03 UTC\n"
    "*ETA:* unknown: recovery starts after two consecutive healthy probes of the provider\n"
    "*Next update:* 2026-11-26 03:03 UTC",
    #
    ":hourglass_flowing_sand: *[2026-11-26 03:03 UTC] Update 2: ISO-NE* · open for 2h 03m · "
    "state stabilised\n"
    "*Progress:* 2 alert(s) firing, 0 resolved; stale: lmp_realtime_5min (2h 01m).\n"
    "*Mitigations applied:*\n"
    "• throttle API to 50 rps: success at 2026-11-26 01:03 UTC\n"
    "• pause DAG external_data_ingest: success at 2026-11-26 01:03 UTC\n"
    "• trigger DAG external_data_fallback: failure (HTTP 409: run already exists) "
    "at 2026-11-26 01:03 UTC\n"
    "*ETA:* unknown: recovery starts after two consecutive healthy probes of the provider\n"
    "*Next update:* 2026-11-26 04:03 UTC",
    #
    ":white_check_mark: *[2026-11-26 03:30 UTC] Resolved: ISO-NE* · "
    "2026-11-26 01:00 UTC to 2026-11-26 03:30 UTC (2h 30m)\n"
    "*Cause (as far as known):* ISO-NE web services answer 503\n"
    "*Customer impact:* stale data in 1 dataset(s):\n"
    "• lmp_realtime_5min: stale for 2h 27m (2026-11-26 01:02 UTC to 2026-11-26 03:29 UTC)\n"
    f"Dashboards affected: <{DASHBOARD}?var-provider=ISO-NE|Pipeline freshness>\n"
    "*Mitigations applied:*\n"
    "• throttle API to 50 rps: success\n"
    "• pause DAG external_data_ingest: success\n"
    "• trigger DAG external_data_fallback: failure (HTTP 409: run already exists)\n"
    "*Recovery:*\n"
    "• unpause DAG external_data_ingest: success\n"
    "• trigger DAG external_data_backfill: success\n"
    "*Data backfill:* triggered (dag_run_id=backfill__2026-11-26T03:25); "
    "missed window from 2026-11-26 00:40 UTC\n"
    "*Detection lag:* not known (no last success or probe failure start recorded)\n"
    "*Follow-up actions* (post-incident checklist):\n"
    "☐ Root-cause analysis &amp; post-mortem (within 1 business day): *Incident Lead* "
    "(Use template in docs/postmortems/external-outage.md)\n"
    "☐ Monitoring review: *Platform* "
    "(Adjust thresholds or add probes if detection lag &gt; 5 min)\n"
    "☐ Data quality audit: *Data Engineering* (Confirm backfill completeness across "
    "mart_external_series_catalog, mart_series_curve_mapping)\n"
    "☐ Runbook update: *Incident Lead* (Capture lessons learned)",
]


async def test_429_waits_retry_after_then_posts(slack: FakeSlack, catalog: Catalog) -> None:
    slack.rate_limit_next(1, retry_after=1)
    async with open_notifier(settings_for(slack), catalog) as notifier:
        assert notifier is not None
        kept = await notifier.post(request("initial", incident(provider="ISO-NE"), T0))

    assert [r.status for r in slack.requests] == [429, 200]
    waited = slack.requests[1].at - slack.requests[0].at
    assert waited >= 0.95  # Retry-After: 1 was honoured
    assert kept["slack_ts"] == slack.messages[0].ts


async def test_retry_after_beyond_the_bound_fails_at_once(
    slack: FakeSlack, catalog: Catalog
) -> None:
    slack.rate_limit_next(1, retry_after=3600)
    started = time.monotonic()
    async with open_notifier(settings_for(slack), catalog) as notifier:
        assert notifier is not None
        with pytest.raises(NoteDeliveryError, match="ratelimited") as info:
            await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert info.value.status == 429
    assert [r.status for r in slack.requests] == [429]
    assert time.monotonic() - started < 30  # did not sit out the hour
    assert slack.messages == []


async def test_rate_limits_are_retried_a_bounded_number_of_times(
    slack: FakeSlack, catalog: Catalog
) -> None:
    slack.rate_limit_next(5, retry_after=0)
    async with open_notifier(settings_for(slack, max_retries=2), catalog) as notifier:
        assert notifier is not None
        with pytest.raises(NoteDeliveryError, match="ratelimited"):
            await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert [r.status for r in slack.requests] == [429, 429, 429]


@pytest.mark.parametrize(
    ("setup", "overrides", "error"),
    [
        (None, {"slack_token": "xoxb-wrong-secret"}, "invalid_auth"),
        (None, {"channel": "#no-such-channel"}, "channel_not_found"),
        ("not_member", {}, "not_in_channel"),
        ("archived", {}, "is_archived"),
    ],
)
async def test_slack_errors_fail_the_note_without_retries(
    slack: FakeSlack, catalog: Catalog, setup: str | None, overrides: dict[str, Any], error: str
) -> None:
    if setup == "not_member":
        slack.member_of.clear()
    if setup == "archived":
        slack.fail_next("is_archived")
    async with open_notifier(settings_for(slack, **overrides), catalog) as notifier:
        assert notifier is not None
        with pytest.raises(NoteDeliveryError) as info:
            await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert str(info.value) == f"Slack chat.postMessage failed: {error}"
    assert info.value.code == error
    assert "secret" not in str(info.value)
    assert len(slack.requests) == 1
    assert slack.messages == []


async def test_server_errors_are_retried(slack: FakeSlack, catalog: Catalog) -> None:
    slack.http_error_next(503)
    async with open_notifier(settings_for(slack), catalog) as notifier:
        assert notifier is not None
        kept = await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert [r.status for r in slack.requests] == [503, 200]
    assert kept["slack_ts"] == slack.messages[0].ts


async def test_unreachable_slack_fails_within_the_deadline(catalog: Catalog) -> None:
    from .support.services import free_port

    settings = NotesSettings(
        slack_token=TOKEN,
        base_url=f"http://127.0.0.1:{free_port()}/api/",
        max_retries=1,
        post_deadline_seconds=10,
    )
    async with open_notifier(settings, catalog) as notifier:
        assert notifier is not None
        with pytest.raises(NoteDeliveryError, match="ClientConnectorError"):
            await notifier.post(request("initial", incident(provider="ISO-NE"), T0))


async def test_post_deadline_bounds_a_note(slack: FakeSlack, catalog: Catalog) -> None:
    slack.rate_limit_next(1, retry_after=3)
    settings = settings_for(slack, post_deadline_seconds=0.5)
    started = time.monotonic()
    async with open_notifier(settings, catalog) as notifier:
        assert notifier is not None
        with pytest.raises(NoteDeliveryError, match=r"not delivered within 0\.5s"):
            await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert time.monotonic() - started < 2.5


async def test_first_delivered_note_starts_the_thread(slack: FakeSlack, catalog: Catalog) -> None:
    """When the initial note failed, the first update opens the thread for the rest."""
    view = incident(provider="ISO-NE")
    async with open_notifier(settings_for(slack), catalog) as notifier:
        assert notifier is not None
        slack.fail_next("internal_error")
        with pytest.raises(NoteDeliveryError):
            await notifier.post(request("initial", view, T0))
        view = await post(notifier, view, "update", view, T0 + HOUR, slot=1)
        view = await post(notifier, view, "update", view, T0 + 2 * HOUR, slot=2)

    first, second = slack.messages
    assert first.thread_ts is None
    assert second.thread_ts == first.ts
    assert view.notes["slack_ts"] == first.ts


async def test_webhook_alternative_posts_without_threads(
    slack: FakeSlack, catalog: Catalog
) -> None:
    settings = NotesSettings(webhook_url=slack.webhook_url)
    view = incident(provider="ISO-NE")
    async with open_notifier(settings, catalog) as notifier:
        assert notifier is not None
        kept = await notifier.post(request("initial", view, T0))
        view = with_notes(view, kept)
        await post(notifier, view, "update", view, T0 + HOUR, slot=1)

    assert "slack_ts" not in kept
    assert kept["last_note_at"] == T0
    assert [m.via for m in slack.messages] == ["webhook", "webhook"]
    assert [m.thread_ts for m in slack.messages] == [None, None]
    assert slack.messages[0].text.startswith(":rotating_light: *[2026-11-26 01:00 UTC] ISO-NE")
    assert slack.messages[1].args == {
        "text": slack.messages[1].text,
        "unfurl_links": False,
        "unfurl_media": False,
    }


@pytest.mark.parametrize(
    ("setup", "status", "body"),
    [
        ("wrong_path", 404, "no_service"),
        ("prohibited", 403, "action_prohibited"),
        ("archived", 410, "channel_is_archived"),
    ],
)
async def test_webhook_errors_fail_the_note_without_leaking_the_url(
    slack: FakeSlack, catalog: Catalog, setup: str, status: int, body: str
) -> None:
    url = slack.webhook_url
    if setup == "wrong_path":
        url = f"{slack.url}/services/T0/B0/revoked-secret"
    slack.webhook_prohibited = setup == "prohibited"
    slack.webhook_archived = setup == "archived"
    async with open_notifier(NotesSettings(webhook_url=url), catalog) as notifier:
        assert notifier is not None
        with pytest.raises(NoteDeliveryError) as info:
            await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert str(info.value) == f"Slack incoming webhook failed: HTTP {status} {body}"
    assert "secret" not in str(info.value)
    assert WEBHOOK_PATH not in str(info.value)
    assert slack.messages == []


async def test_webhook_honours_retry_after(slack: FakeSlack, catalog: Catalog) -> None:
    slack.rate_limit_next(1, retry_after=1)
    async with open_notifier(NotesSettings(webhook_url=slack.webhook_url), catalog) as notifier:
        assert notifier is not None
        await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert [r.status for r in slack.requests] == [429, 200]
    assert slack.requests[1].at - slack.requests[0].at >= 0.95
    assert len(slack.messages) == 1


@pytest.mark.parametrize(
    "settings",
    [NotesSettings(), NotesSettings(enabled=False, slack_token=TOKEN)],
    ids=["no-slack-configured", "disabled"],
)
async def test_no_notifier_without_slack_or_when_disabled(
    catalog: Catalog, settings: NotesSettings
) -> None:
    async with open_notifier(settings, catalog) as notifier:
        assert notifier is None


async def test_token_from_file(slack: FakeSlack, catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "slack-token").write_text(f"{TOKEN}\n", encoding="utf-8")
    settings = NotesSettings(slack_token_file=str(tmp_path / "slack-token"), base_url=slack.api_url)
    async with open_notifier(settings, catalog) as notifier:
        assert notifier is not None
        await notifier.post(request("initial", incident(provider="ISO-NE"), T0))
    assert len(slack.messages) == 1


async def test_hostile_values_arrive_in_slack_inert(slack: FakeSlack, catalog: Catalog) -> None:
    view = incident(
        provider="ISO-NE",
        alerts=[
            alert(
                "ExternalDataStale",
                provider="ISO-NE",
                dataset="<!channel>",
                summary="<http://evil.example|click> & {{ 7*7 }}",
            )
        ],
    )
    async with open_notifier(settings_for(slack), catalog) as notifier:
        assert notifier is not None
        await notifier.post(request("initial", view, T0))
    [message] = slack.messages
    assert "<!channel>" not in message.text
    assert "*Affected datasets:* &lt;!channel&gt;" in message.text
    assert ": &lt;http://evil.example|click&gt; &amp; {{ 7*7 }}" in message.text
