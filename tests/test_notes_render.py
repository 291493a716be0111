"""Note rendering: runbook fields, Slack escaping, the sandbox, overrides, fallback."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from feedguard.core.catalog import Catalog
from feedguard.core.schema import ConfigError, load_model
from feedguard.responder.notes.context import stale_datasets
from feedguard.responder.notes.render import MAX_TEXT, NoteRenderer
from feedguard.responder.notes.settings import NotesSettings
from feedguard.responder.notes.templates import check_templates, format_duration, slack_escape

from .conftest import make_catalog
from .support.incidents import HOUR, T0, action, alert, incident, request

DASHBOARD = "http://localhost:3000/d/feedguard-pipeline-freshness/pipeline-freshness"


@pytest.fixture
def catalog() -> Catalog:
    return make_catalog(
        {
            "EIA": {
                "description": "U.S. Energy Information Administration open data API",
                "datasets": ["electricity_rto_region_data", "natural_gas_weekly_storage"],
                "dags": ["external_data_ingest", "external_backfill"],
                "dashboards": [
                    {"title": "Pipeline freshness", "url": f"{DASHBOARD}?var-provider=EIA"},
                    {"title": "External Data", "url": "http://localhost:3000/dashboards/f/ext"},
                ],
            }
        }
    )


def render(
    catalog: Catalog, req: object, settings: NotesSettings | None = None
) -> tuple[str, bool]:
    renderer = NoteRenderer(settings or NotesSettings(), catalog)
    return renderer.render(req)  # type: ignore[arg-type]


def test_initial_note_carries_the_runbook_fields(catalog: Catalog) -> None:
    view = incident(
        alerts=[
            alert("ExternalProviderDown", starts_at=T0, summary="EIA health probe failing"),
            alert("ExternalDataStale", dataset="natural_gas_weekly_storage", starts_at=T0 + 60),
        ]
    )
    text, from_template = render(catalog, request("initial", view, T0 + 90))

    assert from_template
    headline = text.splitlines()[0]
    # [time] provider(s), first alert, affected dashboards (from the catalog), next update time
    assert headline == (
        ":rotating_light: *[2026-11-26 01:01 UTC] EIA: external data incident* · "
        "first alert: *ExternalProviderDown* · dashboards: "
        f"<{DASHBOARD}?var-provider=EIA|Pipeline freshness>, "
        "<http://localhost:3000/dashboards/f/ext|External Data> · "
        "next update 2026-11-26 02:01 UTC"
    )
    assert "*First alert:* ExternalProviderDown (page) since 2026-11-26 01:00 UTC: " in text
    assert "EIA health probe failing" in text
    assert "*Affected datasets:* natural_gas_weekly_storage" in text
    assert "*Next update:* 2026-11-26 02:01 UTC" in text


def test_update_lists_mitigations_with_results_and_eta(catalog: Catalog) -> None:
    view = incident(
        state="stabilised",
        alerts=[
            alert("ExternalProviderDown", annotations={"eta": "vendor says 03:00 UTC"}),
        ],
        actions=[
            action("pause_dags", "pause DAG external_data_ingest", T0 + 100),
            action(
                "throttle_api",
                "throttle API to 50 rps",
                T0 + 110,
                result="failure",
                error="HTTP 403 forbidden",
            ),
        ],
        notes={"last_note_at": T0 + 90},
    )
    text, _ = render(catalog, request("update", view, T0 + 90 + HOUR, slot=1))

    assert text.splitlines()[0] == (
        ":hourglass_flowing_sand: *[2026-11-26 02:01 UTC] Update 1: EIA* · open for 1h 01m · "
        "state stabilised"
    )
    assert "• pause DAG external_data_ingest: success at 2026-11-26 01:01 UTC" in text
    assert "• throttle API to 50 rps: failure (HTTP 403 forbidden) at 2026-11-26 01:01 UTC" in text
    assert "2 step(s) since 2026-11-26 01:01 UTC" in text
    assert "*ETA:* vendor says 03:00 UTC" in text
    assert "*Next update:* 2026-11-26 03:01 UTC" in text


def test_resolution_has_cause_impact_backfill_and_checklist_with_owners(catalog: Catalog) -> None:
    view = incident(
        state="resolved",
        resolved_at=T0 + 2 * HOUR,
        alerts=[
            alert("ExternalProviderDown", ends_at=T0 + 100 * 60, summary="EIA API returns 503"),
            alert(
                "ExternalDataStale",
                dataset="electricity_rto_region_data",
                starts_at=T0 + 5 * 60,
                ends_at=T0 + 110 * 60,
            ),
        ],
        actions=[
            action("pause_dags", "pause DAG external_data_ingest", T0 + 100),
            action(
                "trigger_backfill",
                "trigger DAG external_data_backfill",
                T0 + 105 * 60,
                phase="recovery",
                detail={"dag_run_id": "manual__2026-11-26", "start_date": "2026-11-26"},
            ),
        ],
    )
    text, _ = render(catalog, request("resolution", view, T0 + 2 * HOUR))

    assert text.splitlines()[0] == (
        ":white_check_mark: *[2026-11-26 03:00 UTC] Resolved: EIA* · "
        "2026-11-26 01:00 UTC to 2026-11-26 03:00 UTC (2h 00m)"
    )
    assert "*Cause (as far as known):* EIA API returns 503" in text
    assert (
        "• electricity_rto_region_data: stale for 1h 45m "
        "(2026-11-26 01:05 UTC to 2026-11-26 02:50 UTC)"
    ) in text
    assert (
        "*Data backfill:* triggered (dag_run_id=manual__2026-11-26, start_date=2026-11-26); "
        "missed window from 2026-11-26 00:40 UTC"
    ) in text
    # Runbook section 7, each task with its owner.
    for task, owner in [
        ("Root-cause analysis &amp; post-mortem (within 1 business day)", "Incident Lead"),
        ("Monitoring review", "Platform"),
        ("Data quality audit", "Data Engineering"),
        ("Runbook update", "Incident Lead"),
    ]:
        assert f"☐ {task}: *{owner}*" in text


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ([], "*Data backfill:* not triggered"),
        (
            [
                action(
                    "trigger_backfill",
                    "trigger DAG external_data_backfill",
                    T0 + 60,
                    phase="recovery",
                    result="failure",
                    error="HTTP 409 conflict",
                )
            ],
            "*Data backfill:* FAILED (HTTP 409 conflict): run it by hand",
        ),
        (
            [action("trigger_backfill", "x", T0 + 60, phase="recovery", result="dry_run")],
            "*Data backfill:* dry run only, not triggered",
        ),
    ],
)
def test_backfill_status_comes_from_the_trigger_backfill_record(
    catalog: Catalog, actions: list[object], expected: str
) -> None:
    view = incident(state="resolved", resolved_at=T0 + HOUR, actions=actions)  # type: ignore[arg-type]
    text, _ = render(catalog, request("resolution", view, T0 + HOUR))
    assert expected in text


HOSTILE = {
    "channel": "<!channel>",
    "link": "<http://evil.example|click here>",
    "amp": "R&D",
    "jinja": "{{ 7*7 }}",
    "block": "{% for x in range(3) %}loop{% endfor %}",
}


@pytest.mark.parametrize("kind", ["initial", "update", "resolution"])
def test_hostile_label_and_annotation_values_render_inert(catalog: Catalog, kind: str) -> None:
    view = incident(
        state="resolved" if kind == "resolution" else "open",
        resolved_at=T0 + HOUR if kind == "resolution" else None,
        alerts=[
            alert(
                "ExternalDataStale",
                dataset=HOSTILE["channel"],
                labels={"team": HOSTILE["amp"]},
                annotations={
                    "summary": f"{HOSTILE['link']} {HOSTILE['jinja']} {HOSTILE['block']}",
                    "eta": "<!here> soon",
                },
            )
        ],
        actions=[
            action(
                "pause_dags",
                "pause DAG <@U0ADMIN>",
                T0 + 60,
                result="failure",
                error="<!everyone> & more",
                phase="recovery" if kind == "resolution" else "firing",
            )
        ],
    )
    text, from_template = render(
        catalog,
        request(kind, view, T0 + HOUR, slot=1 if kind == "update" else 0),  # type: ignore[arg-type]
    )
    assert from_template

    # The only Slack control sequences left are the catalog's dashboard links.
    controls = re.findall(r"<[^>]*>", text)
    assert all(c.startswith("<http://localhost:3000/") for c in controls), controls
    assert bool(controls) == (kind != "update")  # the update note shows no dashboards
    # Every & is an entity: no bare ampersand Slack could misread.
    assert re.findall(r"&(?!amp;|lt;|gt;)", text) == []
    # The values are shown, escaped, and never evaluated as templates.
    assert "&lt;!channel&gt;" in text
    assert "49" not in text
    assert "looplooploop" not in text
    summary = (
        "&lt;http://evil.example|click here&gt; {{ 7*7 }} {% for x in range(3) %}loop{% endfor %}"
    )
    assert (summary in text) == (kind != "update")  # the summary is the first alert / cause
    if kind != "initial":
        assert "pause DAG &lt;@U0ADMIN&gt;: failure (&lt;!everyone&gt; &amp; more)" in text
    if kind == "update":
        assert "*ETA:* &lt;!here&gt; soon" in text


def test_quotes_are_not_entity_encoded(catalog: Catalog) -> None:
    view = incident(alerts=[alert("ExternalProviderDown", summary='vendor says "it\'s down"')])
    text, _ = render(catalog, request("initial", view, T0))
    assert 'vendor says "it\'s down"' in text
    assert "&#" not in text


def test_slack_escape_only_touches_the_three_control_characters() -> None:
    escaped = slack_escape("a & b < c > d \" ' *bold* _i_")
    assert escaped == "a &amp; b &lt; c &gt; d \" ' *bold* _i_"


def test_sandbox_blocks_unsafe_template_and_falls_back(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "initial.j2").write_text(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8"
    )
    settings = NotesSettings(templates_dir=str(tmp_path))
    view = incident(alerts=[alert("ExternalProviderDown")])
    with capture_logs() as logs:
        text, from_template = render(catalog, request("initial", view, T0), settings)

    assert not from_template
    assert "subclasses" not in text
    assert "object" not in text
    assert text.splitlines()[0] == (
        "[2026-11-26 01:00 UTC] Incident opened: external data incident on EIA "
        "(id inc-0001, state open)."
    )
    assert "Next update: 2026-11-26 02:00 UTC." in text
    failed = [e for e in logs if e["event"] == "note template failed, posting a plain note"]
    assert failed
    assert "SecurityError" in failed[0]["error"]
    assert failed[0]["log_level"] == "error"


def test_undefined_variable_in_template_falls_back(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "update.j2").write_text("Update {{ no_such_thing.value }}", encoding="utf-8")
    settings = NotesSettings(templates_dir=str(tmp_path))
    text, from_template = render(
        catalog, request("update", incident(), T0 + HOUR, slot=1), settings
    )
    assert not from_template
    assert text.startswith("[2026-11-26 02:00 UTC] Update 1: external data incident on EIA")


def test_fallback_escapes_too(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "initial.j2").write_text("{{ 1 / 0 }}", encoding="utf-8")
    settings = NotesSettings(templates_dir=str(tmp_path))
    view = incident(provider="<!channel>", alerts=[alert("<!here>")])
    text, from_template = render(catalog, request("initial", view, T0), settings)
    assert not from_template
    assert "<!" not in text
    assert "&lt;!channel&gt;" in text
    assert "&lt;!here&gt;" in text


def test_templates_dir_overrides_by_name(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "update.j2").write_text(
        "{{ incident.provider }} update {{ slot }}: {{ mitigations|length }} mitigation(s), "
        "next {{ next_update_at|time }}\n",
        encoding="utf-8",
    )
    settings = NotesSettings(templates_dir=str(tmp_path))
    view = incident(actions=[action("pause_dags", "pause DAG x", T0 + 1)])
    update, _ = render(catalog, request("update", view, T0 + HOUR, slot=2), settings)
    initial, _ = render(catalog, request("initial", view, T0), settings)

    assert update == "EIA update 2: 1 mitigation(s), next 2026-11-26 03:00 UTC"
    assert initial.startswith(":rotating_light:")  # not overridden: the shipped one


def test_broken_override_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "resolution.j2").write_text("ok\n{% if %}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        check_templates(str(tmp_path))
    [error] = info.value.errors
    assert error.startswith(f"{tmp_path / 'resolution.j2'}: line 2: ")


def test_shipped_templates_compile() -> None:
    check_templates(None)


def test_time_zone_setting_applies_to_every_time(catalog: Catalog) -> None:
    settings = NotesSettings(timezone="Europe/Berlin")
    text, _ = render(catalog, request("initial", incident(), T0), settings)
    assert "[2026-11-26 02:00 CET]" in text
    assert "next update 2026-11-26 03:00 CET" in text


def test_oversized_annotation_is_truncated_below_slacks_limit(catalog: Catalog) -> None:
    huge = "x" * 30_000 + "\n" + "y" * 30_000
    view = incident(alerts=[alert("ExternalProviderDown", summary=huge)])
    text, _ = render(catalog, request("initial", view, T0))
    assert len(text) <= MAX_TEXT
    assert text.endswith("… (truncated)")


def test_stale_dataset_spans_merge_alerts_and_keep_open_ones_open() -> None:
    alerts = [
        alert("ExternalDataStale", dataset="a", starts_at=T0 + 600, ends_at=T0 + 1200),
        alert("ExternalSourceFreshnessError", dataset="a", starts_at=T0, ends_at=T0 + 1800),
        alert("ExternalDataStale", dataset="b", starts_at=T0 + 300),
        alert("ExternalProviderDown"),
    ]
    spans = stale_datasets(alerts, until_default=T0 + 3600)
    assert [(s["dataset"], s["since"], s["until"], s["duration"]) for s in spans] == [
        ("a", T0, T0 + 1800, 1800.0),
        ("b", T0 + 300, T0 + 3600, 3300.0),
    ]


def test_notes_list_the_stale_consumer_endpoints(catalog: Catalog) -> None:
    def consumer(endpoint: str, since: float, ends_at: float | None = None) -> Any:
        view = alert(
            "ExternalConsumerDataStale",
            starts_at=since,
            ends_at=ends_at,
            labels={"endpoint": endpoint},
        )
        return dataclasses.replace(view, fingerprint=f"fp-{endpoint}")

    view = incident(
        alerts=[
            alert("ExternalDataStale", dataset="natural_gas_weekly_storage", starts_at=T0),
            consumer("/v2/scenarios/eia", T0 + 300),
            consumer("/v2/scenarios/eia-hourly", T0 + 600, ends_at=T0 + 900),
        ]
    )
    initial, _ = render(catalog, request("initial", view, T0 + 1200))
    assert (
        "*Stale consumer endpoints:* /v2/scenarios/eia (since 2026-11-26 01:05 UTC), "
        "/v2/scenarios/eia-hourly (since 2026-11-26 01:10 UTC)"
    ) in initial
    update, _ = render(catalog, request("update", view, T0 + 3600))
    assert "consumers stale: /v2/scenarios/eia (55m), /v2/scenarios/eia-hourly (5m)" in update
    # Without such alerts there is no such line.
    plain, _ = render(catalog, request("initial", incident(alerts=view.alerts[:1]), T0))
    assert "consumer" not in plain


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (720, "12m"), (3900, "1h 05m"), (90000, "1d 1h 00m")],
)
def test_duration_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"slack_token": "xoxb-1", "webhook_url": "https://hooks.example/services/x"},
            "responder.yml: webhook_url: set either slack_token (or slack_token_file) or "
            "webhook_url (or webhook_url_file), not both",
        ),
        (
            {"webhook_url": "hooks.example/services/SECRET"},
            "responder.yml: webhook_url: expected an http(s) URL with a host "
            "(value not shown: it is a secret)",
        ),
        (
            {"timezone": "Mars/Olympus"},
            "responder.yml: timezone: unknown IANA time zone 'Mars/Olympus' "
            "(e.g. UTC, Europe/Berlin)",
        ),
        (
            {"channel": "data platform"},
            "responder.yml: channel: expected a channel name such as '#data-platform' or an ID, "
            "got 'data platform'",
        ),
        ({"templates_dir": "/nonexistent/t"}, "responder.yml: templates_dir: not a directory: "),
        ({"update_interval_seconds": 0}, "responder.yml: update_interval_seconds: must be"),
    ],
)
def test_settings_errors_name_the_key(data: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_model(NotesSettings, data, "responder.yml")
    assert any(e.startswith(error) for e in info.value.errors), info.value.errors
    assert "SECRET" not in str(info.value)


def test_secrets_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("xoxb-from-file\n", encoding="utf-8")
    settings = NotesSettings(slack_token_file=str(tmp_path / "token"))
    assert settings.token() == "xoxb-from-file"
    missing = NotesSettings(webhook_url_file=str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="cannot read Slack webhook URL"):
        missing.webhook()


def test_settings_repr_never_shows_a_secret() -> None:
    text = repr(NotesSettings(slack_token="xoxb-very-secret"))
    assert "xoxb-very-secret" not in text
    assert "slack_token='[redacted]'" in text
    assert "secret" not in repr(NotesSettings(webhook_url="https://hooks.example/T/B/secret"))


def test_validate_reads_secret_files_and_compiles_overrides(tmp_path: Path) -> None:
    (tmp_path / "initial.j2").write_text("{{ incident.id ", encoding="utf-8")
    settings = NotesSettings(slack_token="xoxb-1", templates_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"initial\.j2: line 1: "):
        settings.check_startup()
    missing = NotesSettings(slack_token_file=str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="cannot read Slack bot token"):
        missing.check_startup()
    NotesSettings(enabled=False, slack_token_file=str(tmp_path / "absent")).check_startup()


def test_every_undo_reads_undo_and_says_why_it_was_skipped(catalog: Catalog) -> None:
    """Deferred and left-alone undos are not successes, and the channel learns which
    incident still holds a shared change; a DAG unpause reads "undo:" like the rest."""
    view = incident(
        state="resolved",
        resolved_at=T0 + HOUR,
        actions=[
            action(
                "pause_dags",
                "pause DAG external_data_ingest",
                T0 + HOUR - 60,
                phase="recovery",
                detail={"dag_id": "external_data_ingest", "changed": True},
                reverts="k1",
            ),
            action(
                "pause_dags",
                "pause DAG external_backfill",
                T0 + HOUR - 60,
                phase="recovery",
                result="skipped",
                detail={"why": "left alone: was paused before feedguard; kept paused"},
                reverts="k2",
            ),
            action(
                "throttle_api",
                "set AURUM_API_RATE_LIMIT_RPS=50",
                T0 + HOUR - 60,
                phase="recovery",
                result="skipped",
                detail={
                    "why": "deferred: stays in place, still held by incident MISO-1"
                    " (undone when the last holder recovers)",
                    "still_held_by": ["MISO-1"],
                },
                reverts="k3",
            ),
        ],
    )
    for kind in ("update", "resolution"):
        text, _ = render(catalog, request(kind, view, T0 + HOUR))
        assert "• undo: pause DAG external_data_ingest: success" in text
        assert (
            "• undo: pause DAG external_backfill: skipped"
            " (left alone: was paused before feedguard; kept paused)"
        ) in text
        assert (
            "• undo: set AURUM_API_RATE_LIMIT_RPS=50: skipped (deferred: stays in place,"
            " still held by incident MISO-1 (undone when the last holder recovers))"
        ) in text


@pytest.mark.parametrize("kind", ["initial", "update"])
def test_a_truncated_group_says_its_picture_is_incomplete(catalog: Catalog, kind: str) -> None:
    view = dataclasses.replace(
        incident(alerts=[alert("ExternalProviderDown", starts_at=T0)]), truncated_alerts=7
    )
    text, from_template = render(catalog, request(kind, view, T0 + 90))  # type: ignore[arg-type]
    assert from_template
    assert (
        "*Picture incomplete:* Alertmanager left 7 alert(s) of this group out of its "
        "notifications (max_alerts)" in text
    )
    complete, _ = render(catalog, request(kind, incident(alerts=view.alerts), T0 + 90))  # type: ignore[arg-type]
    assert "Picture incomplete" not in complete
