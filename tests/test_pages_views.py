"""What the incident page says about each action, link and time (responder/pages/views.py)."""

from __future__ import annotations

from typing import Any

from feedguard.responder.incidents import add_event, new_incident
from feedguard.responder.pages.views import (
    incident_page,
    outcome,
    relative,
    safe_link,
    truncated_alerts,
)

T0 = 1_790_000_000.0


def record(result: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "action": "throttle_api",
        "target": "set AURUM_API_RATE_LIMIT_RPS=50",
        "resource": "k8s:cm",
        "phase": "firing",
        "result": result,
        "at": T0,
        "previous": None,
        "detail": {},
        "error": None,
    }
    base.update(fields)
    return base


def test_outcome_says_what_became_of_each_target() -> None:
    assert outcome(record("success", previous="100", detail={"changed": True})) == "applied"
    assert (
        outcome(
            record("success", phase="recovery", reverts="k", detail={"restored": "100"}),
        )
        == "restored 100"
    )
    assert (
        outcome(
            record(
                "skipped",
                reverts="k",
                detail={"why": "still held by MISO-1", "still_held_by": ["MISO-1"]},
            )
        )
        == "left alone: still held by MISO-1"
    )
    assert (
        outcome(record("skipped", reverts="k", detail={"why": "nothing applied to undo"}))
        == "left alone: nothing applied to undo"
    )
    kept = {"why": "left alone: was paused before feedguard; kept paused", "changed": False}
    assert outcome(record("skipped", reverts="k", detail=kept)) == (
        "left alone: was paused before feedguard; kept paused"
    )
    held = {"already_held_by": "ISO-NE-1", "why": "already held by incident ISO-NE-1"}
    assert outcome(record("success", detail=held)) == (
        "not applied again: already held by incident ISO-NE-1"
    )
    assert outcome(record("failure", error="HTTP 403")) == "failed: HTTP 403"
    assert outcome(record("dry_run", detail={"why": "global dry run (config)"})) == (
        "planned (dry run): global dry run (config)"
    )


def test_the_page_keeps_the_value_replaced_and_the_holders() -> None:
    doc = new_incident("ISO-NE-1", "ISO-NE", T0, T0 - 1200)
    doc["actions"] = [
        record("success", previous={"rps": 100}, detail={"changed": True}),
        record(
            "skipped",
            phase="recovery",
            reverts="k",
            detail={"why": "still held by MISO-1", "still_held_by": ["MISO-1"]},
        ),
    ]
    page = incident_page(doc, T0 + 90)
    applied, left = page["actions"]
    assert applied["replaced"] == '{"rps": 100}'
    assert left["holders"] == ["MISO-1"]
    assert left["revert"] is True
    assert page["opened"] == {
        "utc": "2026-09-21 14:13:20 UTC",
        "iso": "2026-09-21T14:13:20Z",
        "relative": "1 min ago",
    }
    # The opening event's last_success_before reads as a time, not as epoch seconds.
    assert ("last_success_before", "2026-09-21 13:53:20 UTC") in page["timeline"][0]["details"]


def test_only_http_and_relative_links_become_links() -> None:
    assert safe_link("https://grafana.example/d/x") == "https://grafana.example/d/x"
    assert safe_link("docs/runbook.md#externalproviderdown") == (
        "docs/runbook.md#externalproviderdown"
    )
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", "", None, 3):
        assert safe_link(bad) is None


def test_relative_times_and_truncation() -> None:
    assert relative(T0, T0 + 2) == "just now"
    assert relative(T0, T0 + 3 * 3600 + 5) == "3 h ago"
    assert relative(T0 + 120, T0) == "in 2 min"
    doc = new_incident("x", "ISO-NE", T0, None)
    add_event(doc, T0, "alert firing: A", truncated=0)
    assert truncated_alerts(doc) == 0
    add_event(doc, T0, "alert firing: B", truncated=7)
    assert truncated_alerts(doc) == 7


def test_notes_link_to_the_slack_thread_when_the_channel_id_is_known() -> None:
    doc = new_incident("x", "ISO-NE", T0, None)
    add_event(doc, T0 + 1, "note posted: initial:0")
    add_event(doc, T0 + 5, "note failed: update:1", error="HTTP 429")
    page = incident_page(doc, T0 + 10)
    assert page["notes"]["link"] is None  # webhook delivery: no channel ID, no link
    assert [(n["slot"], n["ok"], n["error"]) for n in page["notes"]["posted"]] == [
        ("initial:0", True, None),
        ("update:1", False, "HTTP 429"),
    ]
    doc["notes"] = {"slack_channel": "C024BE91L", "slack_ts": "1790000001.000200"}
    notes = incident_page(doc, T0)["notes"]
    assert notes["link"] == "https://slack.com/app_redirect?channel=C024BE91L"
    assert notes["thread_ts"] == "1790000001.000200"
