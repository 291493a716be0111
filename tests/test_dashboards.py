"""The generated Grafana dashboards and their provisioning, checked without Grafana.

tests/test_prometheus_e2e.py runs every query against a real Prometheus.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .support.dashboards import DASHBOARD_DIR, dashboards, panels, substitute, targets
from .support.services import require_binary

REPO = Path(__file__).resolve().parent.parent
PROVISIONING = REPO / "grafana" / "provisioning"
BOARDS = dashboards()


def board(uid: str) -> dict[str, Any]:
    for value in BOARDS.values():
        if value["uid"] == uid:
            return value
    raise AssertionError(f"no dashboard with uid {uid}")


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def test_generated_dashboards_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "grafana/generate.py", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_exist_with_unique_uids() -> None:
    assert {path.name for path in BOARDS} == {"pipeline-freshness.json", "services.json"}
    uids = [value["uid"] for value in BOARDS.values()]
    assert len(uids) == len(set(uids))
    assert board("feedguard-pipeline-freshness")["title"] == "Pipeline freshness"


@pytest.mark.parametrize("path", sorted(BOARDS), ids=lambda p: p.name)
def test_panels_have_unique_ids_queries_and_the_datasource_variable(path: Path) -> None:
    value = BOARDS[path]
    ids = [panel["id"] for panel in panels(value)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    variables = {v["name"]: v for v in value["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(value):
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{panel['title']} has an empty query"
            assert target["datasource"]["uid"] == "${datasource}"


def test_provider_variable_lists_the_exporters_providers() -> None:
    variables = {v["name"]: v for v in board("feedguard-pipeline-freshness")["templating"]["list"]}
    provider = variables["provider"]
    assert provider["datasource"]["uid"] == "${datasource}"
    assert provider["multi"] is True
    assert provider["includeAll"] is True
    assert provider["allValue"] == ".*"
    assert provider["definition"] == (
        "label_values(external_provider_freshness_sla_seconds, provider)"
    )
    # Every panel over a per-provider exporter series filters by the variable.
    for panel in panels(board("feedguard-pipeline-freshness")):
        for target in panel.get("targets", []):
            if re.search(r"external_(data|provider)[_:]", target["expr"]):
                assert 'provider=~"$provider"' in target["expr"], panel["title"]


def test_pipeline_freshness_shows_what_the_runbook_needs() -> None:
    exprs = "\n".join(
        target["expr"]
        for panel in panels(board("feedguard-pipeline-freshness"))
        for target in panel.get("targets", [])
    )
    for metric in (
        "external_data:age_seconds",  # age per provider and dataset
        "external_provider:freshness_sla_seconds",  # against the SLA
        "external_provider_status",
        "external_provider:probe_success",
        "external_provider_probe_consecutive_successes",
        "external_dag:heartbeat_age_seconds",
        "external_dag_paused",
        "external_quality_suite_success",
        "external_dbt_source_freshness_status",
        "feedguard_responder_open_incidents",
        "feedguard_responder_actions_total",
    ):
        assert metric in exprs, f"Pipeline freshness has no panel over {metric}"


def test_dashboard_links_in_catalog_and_alerts_resolve_to_a_dashboard() -> None:
    catalog = yaml.safe_load((REPO / "config" / "external_providers.yml").read_text())
    urls = [d["url"] for p in catalog["providers"] for d in p.get("dashboards", [])]
    for rules in (REPO / "rules").glob("*.rules.yml"):
        for group in yaml.safe_load(rules.read_text())["groups"]:
            urls += [r["annotations"]["dashboard_url"] for r in group["rules"] if "alert" in r]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        _, d, uid, name = parts.path.split("/")
        assert d == "d"
        assert name == slug(board(uid)["title"]), url
        for query in filter(None, parts.query.split("&")):
            variable = query.split("=")[0].removeprefix("var-")
            names = {v["name"] for v in board(uid)["templating"]["list"]}
            assert variable in names, url


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as a recording rule."""
    promtool = require_binary("promtool")
    found = targets()
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": t.promql}
                    for i, t in enumerate(found)
                ],
            }
        ]
    }
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_grafana_variable_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\$dataset"):
        substitute('external_data:age_seconds{dataset="$dataset"}')


def test_provisioning_puts_dashboards_in_external_data_with_a_prometheus_datasource() -> None:
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "external-data.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["folder"] == "External Data"
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    assert DASHBOARD_DIR.name == "dashboards"
