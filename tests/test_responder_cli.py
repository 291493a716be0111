"""``feedguard-responder check-config`` and ``simulate`` (the shipped config included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedguard.responder.__main__ import main

from .support.responder import alert, notification, resolved

REPO = Path(__file__).resolve().parent.parent
SHIPPED = str(REPO / "config" / "responder.yml")


def test_shipped_config_is_valid_and_in_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", SHIPPED]) == 0
    out = capsys.readouterr().out
    assert "dry_run=on" in out
    assert "store=sqlite" in out


def test_check_config_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "responder.yml"
    bad.write_text(
        f"""
catalog_file: {REPO / "config" / "external_providers.yml"}
listen: nowhere
dry_run: maybe
store: {{backend: redis}}
playbooks:
  - name: a
    matchers: ['alertname=~"(unclosed"']
    firing: [{{action: throttle_api, revert: all}}]
executor: {{attempts: 0}}
"""
    )
    assert main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}: listen: expected HOST:PORT, got 'nowhere'" in err
    assert f"{bad}: dry_run: expected true or false, got str 'maybe'" in err
    assert f"{bad}: executor.attempts: must be at least 1, got 0" in err
    assert any(
        line.startswith(f"{bad}: playbooks[0].matchers: item 0: invalid regex") for line in err
    )
    assert (
        f"{bad}: playbooks[0].firing[0].action: a step has exactly one of 'action' or 'revert'"
        in err
    )


def test_check_config_names_unknown_actions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "responder.yml"
    bad.write_text(
        f"""
catalog_file: {REPO / "config" / "external_providers.yml"}
playbooks:
  - name: b
    firing: [{{action: no_such_action}}]
    resolved: [{{revert: all}}]
"""
    )
    assert main(["check-config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: playbooks[0].firing[0]: unknown action 'no_such_action'" in err


def test_simulate_prints_the_plan_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    down = alert("ISO-NE")
    payload = tmp_path / "payload.json"
    payload.write_text(
        json.dumps(
            notification([down, resolved(alert("NOAA", "ExternalDataStale")), alert("NOPE")])
        )
    )
    db = tmp_path / "var" / "responder.db"
    monkeypatch.setenv("FEEDGUARD_STORE_SQLITE_PATH", str(db))
    assert main(["simulate", str(payload), "--config", SHIPPED]) == 0
    plan = json.loads(capsys.readouterr().out)
    iso, noaa, nope = plan["alerts"]
    assert iso["playbook"] == "provider-down"
    assert [s["action"] for s in iso["steps"]] == [
        "throttle_api",
        "pause_dags",
        "pause_streaming",
        "read_cache",
        "trigger_fallback",
    ]
    # The shipped catalog names ISO-NE's workload and credential Secret (docs/evidence.md).
    assert iso["evidence"] == [
        "list pods -n aurum-dev -l app=external-collector; logs of each container "
        "(sinceSeconds=1800, tailLines=2000, limitBytes=262144), error lines kept (at most 50)",
        "secret aurum-dev/external-provider-iso-ne: metadata only (PartialObjectMetadata)",
    ]
    assert noaa["phase"] == "recovery"
    assert noaa["steps"][-1] == {"revert": "all"}
    assert nope["ignored"] == "provider 'NOPE' is not in the catalog"
    assert not db.exists()  # nothing recorded


def test_simulate_refuses_an_invalid_payload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({**notification([alert("ISO-NE")]), "version": "3"}))
    assert main(["simulate", str(payload), "--config", SHIPPED]) == 2
    assert "version: expected '4'" in capsys.readouterr().err


def test_check_config_compiles_note_templates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "initial.j2").write_text("{% if %}broken\n")
    config = tmp_path / "responder.yml"
    config.write_text(
        f"""
catalog_file: {REPO / "config" / "external_providers.yml"}
notes: {{enabled: true, templates_dir: {templates}}}
"""
    )
    assert main(["check-config", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "initial.j2" in err


def test_simulate_as_the_readme_shows_it_plans_and_renders_the_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = "feedguard-responder simulate --config config/responder.yml "
    command += "examples/alertmanager-webhook.json"
    assert command in (REPO / "README.md").read_text().replace("\n  ", " ")
    monkeypatch.chdir(REPO)
    assert main(command.split()[1:]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [a["playbook"] for a in out["alerts"]] == ["provider-down", "stale-data"]
    firing = [s["action"] for s in out["alerts"][0]["steps"]]
    assert {"throttle_api", "pause_dags", "read_cache", "trigger_fallback"} <= set(firing)
    (note,) = out["notes"]
    assert (note["provider"], note["kind"], note["channel"]) == (
        "ISO-NE",
        "initial",
        "#data-platform",
    )
    text = "\n".join(note["lines"])
    assert "ISO-NE: external data incident" in text
    assert "*First alert:* ExternalProviderDown" in text
    assert "*Affected datasets:* lmp_realtime_5min" in text


def test_simulate_without_playbooks_says_why_nothing_is_planned(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["simulate", "examples/alertmanager-webhook.json"]) == 0
    captured = capsys.readouterr()
    assert "no playbooks configured" in captured.err
    out = json.loads(captured.out)
    assert {a["ignored"] for a in out["alerts"]} == {"no playbook matches the alert"}
    assert out["notes"] == []
