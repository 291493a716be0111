"""The alert and recording rules: generated files up to date, promtool check and unit tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support.services import require_binary

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
RULE_FILES = sorted(RULES.glob("*.rules.yml"))
TEST_FILES = sorted((RULES / "tests").glob("*.test.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"

# The alerts of /work/shared/contracts.md, all of which must exist.
CONTRACT_ALERTS = {
    "ExternalDataStale",
    "ExternalDataFreshnessMetricMissing",
    "ExternalDagHeartbeatMissing",
    "ExternalProviderDown",
    "ExternalQualitySuiteFailed",
    "ExternalSourceFreshnessError",
}
# Alerts added by issues after the contract (docs/alerts.md).
ADDED_ALERTS = {
    "ExternalStreamingJobDown",
    "ExternalProviderCredentialExpiring",
    "ExternalConsumerDataStale",
    "ResponderInboxBacklog",
    "ResponderDetectionLagHigh",
}
ALERTS = CONTRACT_ALERTS | ADDED_ALERTS


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=120, check=False)


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def test_rule_files_exist() -> None:
    assert [p.name for p in RULE_FILES] == [
        "feedguard-alerts.rules.yml",
        "feedguard-recording.rules.yml",
    ]
    assert TEST_FILES


def test_generated_rules_are_up_to_date() -> None:
    result = run([sys.executable, "rules/generator/generate.py", "--check"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr
    # "clean": no warnings either.
    assert "WARNING" not in (result.stdout + result.stderr).upper(), result.stdout + result.stderr


def test_promtool_unit_tests() -> None:
    promtool = require_binary("promtool")
    result = run([promtool, "test", "rules", *map(str, TEST_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_contract_alert_is_defined() -> None:
    assert {rule["alert"] for rule in alert_rules()} == ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}")
def test_alert_has_for_labels_and_annotations(rule: dict[str, Any]) -> None:
    assert rule.get("for"), "every alert has a for duration"
    labels = rule["labels"]
    assert labels["severity"] in {"page", "ticket", "info"}
    assert labels["team"] == "data-platform"
    annotations = rule["annotations"]
    assert set(annotations) >= {"summary", "description", "runbook_url", "dashboard_url"}
    assert annotations["dashboard_url"].startswith(
        "http://localhost:3000/d/feedguard-pipeline-freshness/pipeline-freshness"
    )


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}")
def test_provider_alerts_carry_the_provider_label(rule: dict[str, Any]) -> None:
    """The responder groups alerts into incidents by ``provider``.

    An alert about a provider's datasets or probes keeps ``provider`` in its
    result: the expression aggregates ``by (provider, ...)`` or keeps it.
    """
    expr = rule["expr"]
    about_provider = re.search(
        r"\bexternal_(data_last|data:|provider)", expr
    ) and not expr.startswith("absent(")
    if about_provider:
        assert "provider" in expr
        assert "{{ $labels.provider }}" in rule["annotations"]["summary"]


def github_anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_runbook_urls_point_at_runbook_sections() -> None:
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/runbook.md", url
        assert anchor in anchors, f"{rule['alert']}: no heading in docs/runbook.md for #{anchor}"


def test_promtool_tests_cover_every_alert_at_14_and_16_minutes() -> None:
    """Every alert has a not-yet case at 14m (empty) and a firing case at 16m."""
    quiet: set[str] = set()
    firing: set[str] = set()
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                if case["eval_time"] == "14m" and not case.get("exp_alerts"):
                    quiet.add(case["alertname"])
                if case["eval_time"] == "16m" and case.get("exp_alerts"):
                    firing.add(case["alertname"])
                    for alert in case["exp_alerts"]:
                        assert set(alert["exp_annotations"]) >= {
                            "summary",
                            "description",
                            "runbook_url",
                            "dashboard_url",
                        }
    assert quiet == ALERTS
    assert firing == ALERTS


def test_example_prometheus_config_loads_the_rules(tmp_path: Path) -> None:
    """deploy/prometheus/prometheus.yml, laid out as documented, passes promtool check config."""
    promtool = require_binary("promtool")
    config = tmp_path / "prometheus.yml"
    config.write_text((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (tmp_path / "rules").symlink_to(RULES)
    result = run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_FILES)} rule files found" in result.stdout
    jobs = {job["job_name"] for job in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert {"feedguard-exporter", "feedguard-responder"} <= jobs
