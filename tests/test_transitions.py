"""The incident state machine as pure functions: given an incident and transitions,
the new incident and the work it plans.  No store, no clock, no network."""

from __future__ import annotations

from typing import Any

from feedguard.core.catalog import Catalog, Provider
from feedguard.responder import incidents as inc
from feedguard.responder import note_slots, probe_streak, progress, records, resources
from feedguard.responder import transitions as tr
from feedguard.responder.config import ActionOptions, Playbook, ResponderConfig, Step
from feedguard.responder.intake import IGNORED_KEPT, add_ignored
from feedguard.responder.plugins import Target
from feedguard.responder.routing import PlaybookMatcher, check_provider
from feedguard.responder.steps import action_params

Doc = dict[str, Any]

DOWN = Playbook(
    name="provider-down",
    matchers=('alertname="ExternalProviderDown"',),
    firing=(Step(action="throttle_api", params={"rate": 1}), Step(action="pause_dags")),
    resolved=(Step(revert="all"),),
)
STALE = Playbook(
    name="stale",
    matchers=('alertname="ExternalDataStale"',),
    firing=(Step(action="pause_dags"), Step(action="fallback")),
    resolved=(Step(revert="pause_dags"),),
)
PLAYBOOKS = {p.name: p for p in (DOWN, STALE)}


def entry(key: str, status: str = "firing", fingerprint: str = "f1", starts: str = "T0") -> Doc:
    name = "ExternalProviderDown" if fingerprint == "f1" else "ExternalDataStale"
    return {
        "key": key,
        "received_at": 100.0,
        "group_key": '{}:{provider="ISO-NE"}',
        "alert": {
            "fingerprint": fingerprint,
            "status": status,
            "labels": {"alertname": name, "provider": "ISO-NE"},
            "annotations": {},
            "startsAt": starts,
            "endsAt": "",
        },
    }


def incident() -> Doc:
    return inc.new_incident("ISO-NE-100-abc", "ISO-NE", 100.0, None)


def apply(doc: Doc, *items: tr.Transition, probe: bool = True) -> tr.Applied:
    return tr.apply_transitions(doc, items, 110.0, health_probe=probe, probes_required=2)


def work(doc: Doc) -> list[tuple[str, str, str | None]]:
    return [(w["id"], w["status"], w["action"] or w["revert"]) for w in doc["work"]]


def events(doc: Doc) -> list[str]:
    return [e["event"] for e in doc["timeline"]]


def firing_incident() -> Doc:
    doc = incident()
    apply(doc, tr.Transition(entry("k1"), DOWN))
    return doc


# --- alert transitions ---------------------------------------------------------------


def test_first_firing_alert_plans_the_playbooks_firing_steps() -> None:
    doc = incident()
    result = apply(doc, tr.Transition(entry("k1"), DOWN))
    assert result == tr.Applied(changed=True, accepted=[True], needs_service=True)
    assert doc["state"] == inc.OPEN
    assert work(doc) == [
        ("firing:provider-down:0", "pending", "throttle_api"),
        ("firing:provider-down:1", "pending", "pause_dags"),
    ]
    assert doc["work"][0]["params"] == {"rate": 1}
    assert doc["alerts"]["f1"]["status"] == "firing"
    assert doc["transitions"] == ["k1"]
    assert doc["group_keys"] == ['{}:{provider="ISO-NE"}']
    assert events(doc)[-2:] == [
        "alert firing: ExternalProviderDown",
        "playbook provider-down: 2 firing steps planned",
    ]


def test_reapplied_entry_changes_nothing_and_needs_no_run_once_settled() -> None:
    doc = firing_incident()
    for item in doc["work"]:
        item["status"] = "done"
    doc["state"] = inc.STABILISED
    before = [dict(e) for e in doc["timeline"]]
    result = apply(doc, tr.Transition(entry("k1"), DOWN))
    assert result == tr.Applied(changed=False, accepted=[True], needs_service=False)
    assert doc["timeline"] == before


def test_same_entry_twice_in_one_batch_is_applied_once() -> None:
    doc = incident()
    apply(doc, tr.Transition(entry("k1"), DOWN), tr.Transition(entry("k1"), DOWN))
    assert doc["transitions"] == ["k1"]
    assert events(doc).count("alert firing: ExternalProviderDown") == 1


def test_second_playbook_does_not_plan_a_step_already_planned() -> None:
    doc = firing_incident()
    apply(doc, tr.Transition(entry("k2", fingerprint="f2"), STALE))
    assert [w[0] for w in work(doc)] == [
        "firing:provider-down:0",
        "firing:provider-down:1",
        "firing:stale:1",  # pause_dags is already planned by provider-down
    ]
    assert doc["playbooks"] == ["provider-down", "stale"]
    assert "playbook stale: 1 firing steps planned" in events(doc)


def test_resolved_alert_the_incident_does_not_know_is_not_accepted() -> None:
    doc = firing_incident()
    snapshot = repr(doc)
    result = apply(doc, tr.Transition(entry("k9", "resolved", fingerprint="f2"), None))
    assert result.accepted == [False]
    assert not result.changed
    assert repr(doc) == snapshot


def test_last_resolved_alert_starts_recovery() -> None:
    doc = firing_incident()
    result = apply(doc, tr.Transition(entry("k2", "resolved"), None))
    assert result == tr.Applied(changed=True, accepted=[True], needs_service=True)
    assert doc["state"] == inc.RECOVERING
    assert doc["recovery"] == {
        "streak": 0,
        "next_probe_at": 110.0,
        "started_at": 110.0,
        "steps_enqueued": False,
    }
    assert events(doc)[-1] == (
        "all alerts resolved: waiting for 2 consecutive successful health probes"
    )
    without_probe = firing_incident()
    apply(without_probe, tr.Transition(entry("k2", "resolved"), None), probe=False)
    assert (
        events(without_probe)[-1] == "all alerts resolved: no health probe: recovering on resolve"
    )


def test_firing_again_while_recovering_resets_the_gate() -> None:
    doc = firing_incident()
    for item in doc["work"]:
        item["status"] = "done"
    apply(doc, tr.Transition(entry("k2", "resolved"), None))
    apply(doc, tr.Transition(entry("k3", starts="T1"), DOWN))
    assert doc["recovery"] is None
    assert doc["state"] == inc.STABILISED
    assert "alert fired again while recovering: probe streak reset" in events(doc)


def test_stale_firing_copy_of_a_resolved_alert_is_ignored() -> None:
    doc = firing_incident()
    apply(doc, tr.Transition(entry("k2", "resolved"), None))
    apply(doc, tr.Transition(entry("k3"), DOWN))  # same startsAt as the resolved one
    assert doc["alerts"]["f1"]["status"] == "resolved"
    assert doc["state"] == inc.RECOVERING
    assert events(doc)[-1] == "stale firing copy ignored (already resolved)"


def test_resolved_copy_older_than_a_new_firing_is_ignored() -> None:
    # The new firing came through the inbox's urgent lane, ahead of the old resolve.
    doc = incident()
    apply(doc, tr.Transition(entry("k1", starts="2026-09-21T10:00:00Z"), DOWN))
    apply(doc, tr.Transition(entry("k2", starts="2026-09-21T11:00:00Z"), DOWN))
    apply(doc, tr.Transition(entry("k3", "resolved", starts="2026-09-21T10:00:00Z"), None))
    assert doc["alerts"]["f1"]["status"] == "firing"
    assert doc["state"] == inc.OPEN
    assert events(doc)[-1] == "stale resolved copy ignored (fired again since)"
    apply(doc, tr.Transition(entry("k4", "resolved", starts="2026-09-21T11:00:00Z"), None))
    assert doc["state"] == inc.RECOVERING


def test_kept_transition_keys_are_bounded() -> None:
    doc = incident()
    applied: set[str] = set()
    for n in range(tr.TRANSITIONS_KEPT + 5):
        tr.remember(doc, f"k{n}", applied)
    assert len(doc["transitions"]) == tr.TRANSITIONS_KEPT
    assert doc["transitions"][0] == "k5"
    assert "k0" in applied  # still a repeat within the batch


# --- steps and settling -----------------------------------------------------------------


def test_failed_step_settles_in_needs_attention_and_retry_puts_it_back() -> None:
    doc = firing_incident()
    progress.set_state(doc, inc.STABILISING, 111.0, "running firing steps")
    assert progress.finish_item(doc, "firing:provider-down:0", False, 112.0)
    assert not progress.finish_item(doc, "firing:provider-down:0", True, 113.0)  # not pending now
    assert progress.finish_item(doc, "firing:provider-down:1", True, 114.0)
    assert progress.settle(doc, 115.0, notes=True)
    assert doc["state"] == inc.NEEDS_ATTENTION
    assert not progress.settle(doc, 116.0, notes=True)
    assert progress.retry_failed(doc, 117.0) == 1
    assert doc["state"] == inc.STABILISED
    assert doc["live"] is True
    assert work(doc)[0][1] == "pending"
    assert events(doc)[-1] == "retry requested: 1 failed steps"
    assert progress.retry_failed(doc, 118.0) == 0


def test_recovery_gate_counts_probes_then_plans_the_resolved_steps() -> None:
    doc = firing_incident()
    for item in doc["work"]:
        item["status"] = "done"
    apply(doc, tr.Transition(entry("k2", "resolved"), None))
    gate = {"playbooks": PLAYBOOKS, "probes_required": 2, "probe_interval": 30.0}
    ok = probe_streak.ProbeResult(True, "", 200)
    assert probe_streak.recovery_probe(doc, ok, 120.0, **gate) is False
    failed = probe_streak.ProbeResult(False, "HTTP 503", 503)
    assert probe_streak.recovery_probe(doc, failed, 150.0, **gate) is False
    assert doc["recovery"]["streak"] == 0
    assert doc["recovery"]["next_probe_at"] == 180.0
    assert probe_streak.recovery_probe(doc, ok, 180.0, **gate) is False
    assert probe_streak.recovery_probe(doc, ok, 210.0, **gate) is True
    assert doc["recovered_at"] == 210.0
    assert work(doc)[-1] == ("recovery:provider-down:0", "pending", "all")
    assert events(doc)[-4:] == [
        "probe failed: HTTP 503, streak reset",
        "probe 1/2 ok (HTTP 200)",
        "probe 2/2 ok (HTTP 200)",
        "provider recovered: running 1 resolved steps",
    ]
    assert probe_streak.recovery_probe(doc, ok, 240.0, **gate) is None  # already passed
    assert progress.finish_item(doc, "recovery:provider-down:0", True, 250.0)
    assert progress.settle(doc, 251.0, notes=True)
    assert doc["state"] == inc.RESOLVED
    assert doc["resolved_at"] == 251.0
    assert doc["live"] is True  # until the resolution note is posted


def test_recovery_without_probe_passes_at_once_and_settles_dead_without_notes() -> None:
    doc = firing_incident()
    for item in doc["work"]:
        item["status"] = "done"
    apply(doc, tr.Transition(entry("k2", "resolved"), None), probe=False)
    gate = {"playbooks": PLAYBOOKS, "probes_required": 2, "probe_interval": 30.0}
    assert probe_streak.recovery_probe(doc, None, 120.0, **gate) is True
    assert "no health probe configured: recovering on resolve" in events(doc)
    progress.finish_item(doc, "recovery:provider-down:0", False, 121.0)
    assert progress.settle(doc, 122.0, notes=False)
    assert doc["state"] == inc.NEEDS_ATTENTION  # a failed undo needs a human
    doc["work"][-1]["status"] = "done"
    assert progress.settle(doc, 123.0, notes=False)
    assert doc["state"] == inc.RESOLVED
    assert doc["live"] is False


def test_recovery_probe_does_nothing_outside_recovery() -> None:
    doc = firing_incident()
    gate = {"playbooks": PLAYBOOKS, "probes_required": 2, "probe_interval": 30.0}
    ok = probe_streak.ProbeResult(True, "", 200)
    assert probe_streak.recovery_probe(doc, ok, 120.0, **gate) is None
    assert doc["recovery"] is None


# --- notes ------------------------------------------------------------------------------


def test_due_notes_initial_current_update_and_resolution() -> None:
    doc = firing_incident()
    assert note_slots.due_notes(doc, 110.0, 3600.0) == [("initial", 0)]
    note_slots.note_done(doc, "initial:0", {"ts": "1.1"}, None, 111.0)
    assert doc["notes"] == {"ts": "1.1"}
    assert events(doc)[-1] == "note posted: initial:0"
    after_pause = 100.0 + 3 * 3600 + 1
    assert note_slots.due_notes(doc, after_pause, 3600.0) == [("update", 3)]
    assert note_slots.due_notes(doc, 110.0, 0.0) == []
    note_slots.note_done(doc, "update:3", None, "SlackApiError: ratelimited", 3800.0)
    assert doc["timeline"][-1]["error"] == "SlackApiError: ratelimited"
    assert note_slots.due_notes(doc, 100.0 + 3 * 3600 + 2, 3600.0) == []
    doc["state"] = inc.RESOLVED
    assert note_slots.due_notes(doc, 99999.0, 3600.0) == [("resolution", 0)]
    note_slots.note_done(doc, "resolution:0", None, None, 99999.0)  # posted by another replica
    assert doc["live"] is False
    assert note_slots.due_notes(doc, 99999.0, 3600.0) == []


# --- routing and the ignored list ----------------------------------------------------------


def test_routing_names_why_an_alert_is_ignored() -> None:
    catalog = Catalog(providers=(Provider(name="ISO-NE"), Provider(name="MISO", enabled=False)))
    assert check_provider(catalog, {}) == (None, "alert has no provider label")
    assert check_provider(catalog, {"provider": "PJM"}) == (
        None,
        "provider 'PJM' is not in the catalog",
    )
    assert check_provider(catalog, {"provider": "MISO"}) == (
        None,
        "provider 'MISO' is disabled in the catalog",
    )
    provider, reason = check_provider(catalog, {"provider": "ISO-NE"})
    assert provider is not None
    assert provider.name == "ISO-NE"
    assert reason is None
    match = PlaybookMatcher([DOWN, STALE])
    assert match({"alertname": "ExternalDataStale"}) is STALE
    assert match({"alertname": "Other"}) is None


def test_ignored_list_keeps_each_key_once_and_the_newest() -> None:
    doc = None
    for n in range(IGNORED_KEPT + 2):
        doc = add_ignored(doc, {"key": f"k{n}"})
    assert doc is not None
    doc = add_ignored(doc, {"key": f"k{IGNORED_KEPT + 1}"})
    assert len(doc["entries"]) == IGNORED_KEPT
    assert doc["entries"][0]["key"] == "k2"


# --- records and shared resources ------------------------------------------------------------


def test_records_replace_a_failure_keep_a_final_result_and_mark_reverts() -> None:
    doc = firing_incident()
    item = doc["work"][0]
    target = Target(description="configmap iso-ne", resource="k8s:cm:iso-ne")
    failed = records.new_record(item, "throttle_api", target, "failure", 120.0, error="boom")
    assert records.add_record(doc, item, failed, "step failed")
    applied = records.new_record(
        item, "throttle_api", target, "success", 121.0, previous="100", reversible=True
    )
    assert records.add_record(doc, item, applied, "step applied")
    assert [r["result"] for r in doc["actions"]] == ["success"]
    assert not records.add_record(doc, item, failed, "step failed")  # final stays
    assert records.done_targets(doc, item) == {"configmap iso-ne"}
    undo = {"id": "recovery:provider-down:0", "phase": "recovery", "revert": "all", "params": {}}
    assert records.revert_candidates(doc, undo) == [doc["actions"][0]]
    restored = records.new_record(
        undo, "throttle_api", target, "success", 130.0, reverts=applied["key"]
    )
    assert records.add_record(doc, undo, restored, "step reverted")
    assert doc["actions"][0]["reverted"] is True
    assert records.revert_candidates(doc, undo) == []


def test_a_shared_resource_is_restored_only_by_its_last_holder() -> None:
    res: Doc | None = None
    res, (first, applied, _, _) = resources.claim("cm", "A")(res)
    assert (first, applied) == (True, False)
    res, _ = resources.applied("A", "original")(res)
    res, (first, applied, original, holders) = resources.claim("cm", "B")(res)
    assert (first, applied, original, holders) == (False, True, "original", ["A", "B"])
    res, (last, _, _, holders) = resources.release("A")(res)
    assert (last, holders) == (False, ["B"])
    assert res is not None
    res, (last, applied, original, _) = resources.release("B")(res)
    assert (last, applied, original) == (True, True, "original")
    res, _ = resources.reverted(res)
    assert res is not None
    assert res["applied"] is False
    assert res["live"] is False


def test_step_params_override_the_actions_configured_defaults() -> None:
    config = ResponderConfig(
        action_options={"throttle_api": ActionOptions(params={"rate": 5, "x": 1})}
    )
    assert action_params(config, "throttle_api", {"rate": 1}) == {"rate": 1, "x": 1}
    assert action_params(config, "pause_dags", {"a": 2}) == {"a": 2}
