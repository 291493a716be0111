"""The rule and dashboard generators' deployment parameters (rules/generator/params.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from .support.services import require_binary

REPO = Path(__file__).resolve().parent.parent
BASE = "https://git.example.com/acme/feedguard/blob/main"
GRAFANA = "https://grafana.example.com"
VARIANT = [
    "--runbook-base-url", BASE + "/",
    "--grafana-url", GRAFANA,
    "--exporter-job", "fg-exporter",
    "--responder-job", "fg-responder",
    "--team", "platform",
    "--datasource", "prom-main",
]  # fmt: skip


def generate(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_rules_variant_has_absolute_runbook_links_and_the_given_labels(tmp_path: Path) -> None:
    result = generate("rules/generator/generate.py", "--out", str(tmp_path), *VARIANT)
    assert result.returncode == 0, result.stderr
    alerts = yaml.safe_load((tmp_path / "feedguard-alerts.rules.yml").read_text())
    rules = alerts["groups"][0]["rules"]
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["runbook_url"] == f"{BASE}/docs/runbook.md#{rule['alert'].lower()}"
        assert annotations["dashboard_url"].startswith(f"{GRAFANA}/d/feedguard-pipeline-freshness/")
        assert rule["labels"]["team"] == "platform"
    assert any('up{job="fg-exporter"}' in rule["expr"] for rule in rules)
    assert not any("feedguard-exporter" in rule["expr"] for rule in rules)
    # The PrometheusRule of the variant carries the same groups.
    crd = yaml.safe_load((tmp_path / "prometheus-rule.yaml").read_text())
    assert crd["spec"]["groups"][1] == alerts["groups"][0]
    promtool = require_binary("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "feedguard-alerts.rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The committed files were not touched.
    assert generate("rules/generator/generate.py", "--check").returncode == 0


def test_dashboards_variant_uses_the_given_jobs_team_and_datasource(tmp_path: Path) -> None:
    result = generate("grafana/generate.py", "--out", str(tmp_path), *VARIANT)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "pipeline-freshness.json").read_text()
    board = json.loads(text)
    (source,) = (v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert source["current"]["value"] == "prom-main"
    assert 'up{job=\\"fg-exporter\\"}' in text
    assert 'team=\\"platform\\"' in text
    assert f"{BASE}/docs/runbook.md" in board["description"]
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    assert not [e for e in exprs if "feedguard-exporter" in e or "data-platform" in e]
    services = (tmp_path / "services.json").read_text()
    assert "fg-exporter|fg-responder" in services
    maps = list(yaml.safe_load_all((tmp_path / "grafana-dashboards.yaml").read_text()))
    assert json.loads(maps[0]["data"]["pipeline-freshness.json"]) == board
    assert generate("grafana/generate.py", "--check").returncode == 0


def test_wrong_parameters_are_all_named_and_nothing_is_written(tmp_path: Path) -> None:
    for script in ("rules/generator/generate.py", "grafana/generate.py"):
        result = generate(
            script,
            "--out", str(tmp_path),
            "--runbook-base-url", "docs/runbook.md",
            "--grafana-url", "https://grafana.example.com/?orgId=1",
            "--team", 'data"platform',
        )  # fmt: skip
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "--runbook-base-url: expected an absolute http(s) URL, got 'docs/runbook.md'",
            "--grafana-url: expected a URL without query or fragment, "
            "got 'https://grafana.example.com/?orgId=1'",
            "--team: expected letters, digits, '_', '.', ':' or '-', got 'data\"platform'",
        ]
    assert list(tmp_path.iterdir()) == []
