"""Generate the "External Data" Grafana dashboards as JSON.

    python grafana/generate.py           # (re)write grafana/dashboards/*.json and their ConfigMaps
    python grafana/generate.py --check   # exit 1 when they are out of date
    python grafana/generate.py --out DIR --datasource UID ...   # a variant in DIR

Dashboards are code so that panel ids, the datasource variable and the
queries stay consistent; the generated JSON is committed (Grafana provisions
it from grafana/dashboards/, see grafana/provisioning/) and
tests/test_dashboards.py fails when it is out of date.

The same JSON goes into deploy/base/grafana-dashboards.yaml as ConfigMaps
labelled ``grafana_dashboard: "1"`` for the Grafana sidecar in Kubernetes.
Deployment parameters (jobs, team, datasource, runbook URL) are the rule
generator's (rules/generator/params.py, defaults in thresholds.yml).

Queries use the recording rules of rules/feedguard-recording.rules.yml
(``external_data:age_seconds`` and friends) where the alerts use them too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from feedguard.core.generated import write_or_check

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
CONFIGMAPS = HERE.parent / "deploy" / "base" / "grafana-dashboards.yaml"
# One set of deployment parameters for rules and dashboards.
sys.path.insert(0, str(HERE.parent / "rules" / "generator"))

from params import Params, ParamsError, add_arguments, load  # noqa: E402  # after the path

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The runbook's 15 minutes; the per-provider SLA is also drawn from the catalog.
SLA_SECONDS = 900
P = 'provider=~"$provider"'

Json = dict[str, Any]


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    kind: str  # timeseries, stat, table, bargauge
    queries: Sequence[Query]
    description: str = ""
    width: int = 8
    height: int = 8
    unit: str | None = None
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),)
    mappings: Sequence[Json] = ()
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    overrides: Sequence[Json] = ()


@dataclass
class Row:
    title: str
    panels: Sequence[Panel]


def value_map(*pairs: tuple[str, str, str]) -> Json:
    return {
        "type": "value",
        "options": {
            value: {"text": text, "color": color, "index": index}
            for index, (value, text, color) in enumerate(pairs)
        },
    }


UP_DOWN = value_map(("1", "up", "green"), ("0", "failing", "red"))
PASS_FAIL = value_map(("1", "passed", "green"), ("0", "failed", "red"))
PAUSED = value_map(("1", "paused", "orange"), ("0", "active", "green"))
RECORDED = value_map(("1", "recorded", "green"), ("0", "never recorded", "red"))
AGE_THRESHOLDS = ((None, "green"), (SLA_SECONDS * 2 / 3, "yellow"), (SLA_SECONDS, "red"))
SLA_LINE = {"thresholdsStyle": {"mode": "line+area"}}


def pipeline_freshness(params: Params) -> tuple[Json, list[Row]]:
    meta = {
        "uid": "feedguard-pipeline-freshness",
        "title": "Pipeline freshness",
        "description": (
            "External data feeds against the 15-minute freshness SLA: age per provider and "
            "dataset, provider status and probes, DAG heartbeats, quality and dbt freshness, "
            f"and what feedguard-responder is doing about it. Runbook: {params.runbook_url()}."
        ),
        "tags": ["feedguard", "external-data"],
    }
    rows = [
        Row(
            "Freshness",
            [
                Panel(
                    "Datasets over SLA",
                    "stat",
                    [
                        Query(
                            f"count(external_data:age_seconds{{{P}}}\n"
                            "  > on (provider) group_left ()\n"
                            "external_provider:freshness_sla_seconds) or vector(0)",
                            instant=True,
                        )
                    ],
                    "Datasets whose last successful load is older than the provider's SLA "
                    "(ExternalDataStale).",
                    width=6,
                    height=4,
                    thresholds=((None, "green"), (1, "red")),
                ),
                Panel(
                    "Datasets with no recorded success",
                    "stat",
                    [
                        Query(
                            f"count(external_data_last_success_recorded{{{P}}} == 0) or vector(0)",
                            instant=True,
                        )
                    ],
                    "Catalog datasets for which no load has been recorded "
                    "(ExternalDataFreshnessMetricMissing, reason not_recorded).",
                    width=6,
                    height=4,
                    thresholds=((None, "green"), (1, "orange")),
                ),
                Panel(
                    f"Firing {params.team} alerts",
                    "stat",
                    [
                        Query(
                            f'count(ALERTS{{alertstate="firing", team="{params.team}"}})'
                            " or vector(0)",
                            instant=True,
                        )
                    ],
                    width=6,
                    height=4,
                    thresholds=((None, "green"), (1, "red")),
                ),
                Panel(
                    "Exporter up",
                    "stat",
                    [Query(f'up{{job="{params.exporter_job}"}}', "{{instance}}", instant=True)],
                    "Prometheus' scrape of feedguard-exporter; when it is down the freshness "
                    "series disappear (ExternalDataFreshnessMetricMissing).",
                    width=6,
                    height=4,
                    mappings=[UP_DOWN],
                    thresholds=((None, "red"), (1, "green")),
                ),
                Panel(
                    "Age per provider and dataset (SLA 15 min)",
                    "timeseries",
                    [
                        Query(f"external_data:age_seconds{{{P}}}", "{{provider}} {{dataset}}"),
                        Query(
                            f"external_provider:freshness_sla_seconds{{{P}}}",
                            "SLA {{provider}}",
                        ),
                    ],
                    "Seconds since the last successful load (Redis "
                    "external:last_success:<provider>:<dataset>); dashed: the provider's "
                    "freshness_sla_seconds from the catalog.",
                    width=16,
                    height=9,
                    unit="s",
                    thresholds=AGE_THRESHOLDS,
                    custom=SLA_LINE,
                    overrides=[
                        {
                            "matcher": {"id": "byRegexp", "options": "^SLA .*"},
                            "properties": [
                                {
                                    "id": "custom.lineStyle",
                                    "value": {"fill": "dash", "dash": [10, 10]},
                                },
                                {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                            ],
                        }
                    ],
                ),
                Panel(
                    "Age / SLA",
                    "bargauge",
                    [
                        Query(
                            f"sort_desc(external_data:age_over_sla:ratio{{{P}}})",
                            "{{provider}} {{dataset}}",
                            instant=True,
                        )
                    ],
                    "Above 100%: stale.",
                    width=8,
                    height=9,
                    unit="percentunit",
                    thresholds=((None, "green"), (0.66, "yellow"), (1, "red")),
                    options={"displayMode": "gradient", "orientation": "horizontal"},
                ),
                Panel(
                    "Recorded successes",
                    "table",
                    [
                        Query(
                            f"external_data_last_success_recorded{{{P}}}",
                            "{{provider}} {{dataset}}",
                            instant=True,
                        )
                    ],
                    "0: a catalog dataset for which no load has been recorded yet (its "
                    "timestamp series is then absent).",
                    width=24,
                    height=7,
                    mappings=[RECORDED],
                ),
                Panel(
                    "Consumers behind ingestion",
                    "timeseries",
                    [
                        Query(
                            f"external_consumer:lag_behind_ingestion_seconds{{{P}}}",
                            "{{provider}} {{endpoint}} behind ingestion",
                        ),
                        Query(
                            f"external_consumer:age_seconds{{{P}}}",
                            "{{provider}} {{endpoint}} age",
                        ),
                    ],
                    "How far each consumer endpoint (catalog consumer_probes, e.g. the scenario "
                    "API) lags the newest load of its provider's datasets, and the age of the "
                    "newest data it serves (ExternalConsumerDataStale over the SLA for 5m). "
                    "A growing gap with fresh ingestion: the lake-to-API path is late.",
                    width=24,
                    height=8,
                    unit="s",
                    thresholds=AGE_THRESHOLDS,
                ),
            ],
        ),
        Row(
            "Providers",
            [
                Panel(
                    "Cached provider status",
                    "stat",
                    [
                        Query(
                            f"max by (provider, status) (external_provider_status{{{P}}}) == 1",
                            "{{provider}}: {{status}}",
                            instant=True,
                        )
                    ],
                    "Redis external:provider_status:<provider>, written by the platform's "
                    "collectors or an operator (unknown when missing or malformed).",
                    width=8,
                    options={"textMode": "name", "colorMode": "background"},
                ),
                Panel(
                    "Health probe",
                    "stat",
                    [
                        Query(
                            f"external_provider:probe_success{{{P}}}",
                            "{{provider}}",
                            instant=True,
                        )
                    ],
                    "The exporter's health probe of each enabled provider (ExternalProviderDown "
                    "after 15 minutes failing).",
                    width=8,
                    mappings=[UP_DOWN],
                    thresholds=((None, "red"), (1, "green")),
                    options={"colorMode": "background"},
                ),
                Panel(
                    "Consecutive successful probes",
                    "stat",
                    [
                        Query(
                            "min by (provider) "
                            f"(external_provider_probe_consecutive_successes{{{P}}})",
                            "{{provider}}",
                            instant=True,
                        )
                    ],
                    "Recovery (runbook section 5) starts after two in a row.",
                    width=8,
                    thresholds=((None, "red"), (1, "yellow"), (2, "green")),
                ),
                Panel(
                    "Probe duration",
                    "timeseries",
                    [
                        Query(
                            f"max by (provider) (external_provider_probe_duration_seconds{{{P}}})",
                            "{{provider}}",
                        )
                    ],
                    width=12,
                    unit="s",
                ),
                Panel(
                    "Probe HTTP status",
                    "timeseries",
                    [
                        Query(
                            f"max by (provider) (external_provider_probe_http_status_code{{{P}}})",
                            "{{provider}}",
                        )
                    ],
                    "0: no response (timeout or connection error).",
                    width=12,
                    unit="none",
                ),
            ],
        ),
        Row(
            "Airflow DAGs",
            [
                Panel(
                    "DAG heartbeat age",
                    "timeseries",
                    [Query("external_dag:heartbeat_age_seconds", "{{dag_id}}")],
                    "Seconds since the DAG last started a run (ExternalDagHeartbeatMissing "
                    "beyond 15 minutes unless paused).",
                    width=12,
                    unit="s",
                    thresholds=AGE_THRESHOLDS,
                    custom=SLA_LINE,
                ),
                Panel(
                    "Paused DAGs",
                    "stat",
                    [Query("max by (dag_id) (external_dag_paused)", "{{dag_id}}", instant=True)],
                    "Paused by the responder during an incident (runbook 3.2) or by an operator.",
                    width=6,
                    mappings=[PAUSED],
                    options={"colorMode": "background"},
                ),
                Panel(
                    "Latest run state",
                    "table",
                    [
                        Query(
                            "max by (dag_id, state) (external_dag_last_run_state) == 1",
                            "{{dag_id}}: {{state}}",
                            instant=True,
                        )
                    ],
                    width=6,
                ),
                Panel(
                    "Since last successful run",
                    "timeseries",
                    [Query("external_dag:success_age_seconds", "{{dag_id}}")],
                    width=24,
                    height=7,
                    unit="s",
                ),
            ],
        ),
        Row(
            "Quality and dbt freshness",
            [
                Panel(
                    "Quality suites",
                    "stat",
                    [
                        Query(
                            "max by (suite) (external_quality_suite_success)",
                            "{{suite}}",
                            instant=True,
                        )
                    ],
                    "Last Great Expectations checkpoint run per suite "
                    "(ExternalQualitySuiteFailed).",
                    width=8,
                    mappings=[PASS_FAIL],
                    thresholds=((None, "red"), (1, "green")),
                    options={"colorMode": "background"},
                ),
                Panel(
                    "Since last quality run",
                    "timeseries",
                    [Query("external_quality_suite:last_run_age_seconds", "{{suite}}")],
                    width=8,
                    unit="s",
                ),
                Panel(
                    "dbt source freshness",
                    "table",
                    [
                        Query(
                            "max by (source, table, status) "
                            "(external_dbt_source_freshness_status) == 1",
                            "{{source}}.{{table}}: {{status}}",
                            instant=True,
                        )
                    ],
                    "From dbt's sources.json; error on iceberg_external raises "
                    "ExternalSourceFreshnessError.",
                    width=8,
                ),
                Panel(
                    "dbt source age (max_loaded_at)",
                    "timeseries",
                    [Query("external_dbt_source:age_seconds", "{{source}}.{{table}}")],
                    width=24,
                    height=7,
                    unit="s",
                    thresholds=AGE_THRESHOLDS,
                    custom=SLA_LINE,
                ),
            ],
        ),
        Row(
            "Incidents and remediation",
            [
                Panel(
                    "Open incidents",
                    "stat",
                    [
                        Query(
                            f"sum by (provider, state) (feedguard_responder_open_incidents{{{P}}})",
                            "{{provider}}: {{state}}",
                            instant=True,
                        )
                    ],
                    "feedguard-responder's incidents by provider and state; details at "
                    "GET /api/v1/incidents.",
                    width=8,
                    thresholds=((None, "green"), (1, "orange")),
                ),
                Panel(
                    "Remediation actions",
                    "timeseries",
                    [
                        Query(
                            "sum by (action, result) "
                            "(increase(feedguard_responder_actions_total[$__rate_interval]))",
                            "{{action}} {{result}}",
                        )
                    ],
                    "Runbook steps the responder ran (throttle, pause, cache, fallback, "
                    "backfill, ...) and how they ended.",
                    width=8,
                    custom={"drawStyle": "bars", "fillOpacity": 60},
                ),
                Panel(
                    "Actions in the time range",
                    "table",
                    [
                        Query(
                            "sum by (action, result) "
                            "(increase(feedguard_responder_actions_total[$__range])) > 0",
                            "{{action}} {{result}}",
                            instant=True,
                        )
                    ],
                    width=8,
                ),
                Panel(
                    "Active alerts",
                    "table",
                    [Query(f'ALERTS{{team="{params.team}"}}', instant=True)],
                    "Pending and firing feedguard alerts (runbook_url links in docs/runbook.md).",
                    width=24,
                    height=7,
                ),
            ],
        ),
    ]
    return meta, rows


def services(params: Params) -> tuple[Json, list[Row]]:
    meta = {
        "uid": "feedguard-services",
        "title": "feedguard services",
        "description": "Health of feedguard itself: exporter collectors and responder.",
        "tags": ["feedguard"],
    }
    rows = [
        Row(
            "Exporter",
            [
                Panel(
                    "Targets up",
                    "stat",
                    [
                        Query(
                            f'up{{job=~"{params.exporter_job}|{params.responder_job}"}}',
                            "{{job}} {{instance}}",
                            instant=True,
                        )
                    ],
                    width=8,
                    mappings=[UP_DOWN],
                    thresholds=((None, "red"), (1, "green")),
                    options={"colorMode": "background"},
                ),
                Panel(
                    "Collectors up",
                    "stat",
                    [
                        Query(
                            "min by (collector) (external_exporter_collector_up)",
                            "{{collector}}",
                            instant=True,
                        )
                    ],
                    "A failing collector never fails the scrape; its series are missing.",
                    width=8,
                    mappings=[UP_DOWN],
                    thresholds=((None, "red"), (1, "green")),
                    options={"colorMode": "background"},
                ),
                Panel(
                    "Scrape duration",
                    "timeseries",
                    [
                        Query(
                            f'scrape_duration_seconds{{job="{params.exporter_job}"}}',
                            "{{instance}}",
                        ),
                        Query(
                            "max by (collector) (external_exporter_collector_duration_seconds)",
                            "{{collector}}",
                        ),
                    ],
                    width=8,
                    unit="s",
                ),
            ],
        ),
        Row(
            "Responder",
            [
                Panel(
                    "Webhook latency",
                    "timeseries",
                    [
                        Query(
                            "histogram_quantile(0.95, sum by (le) "
                            "(rate(feedguard_responder_webhook_duration_seconds_bucket"
                            "[$__rate_interval])))",
                            "p95",
                        ),
                        Query(
                            "histogram_quantile(0.5, sum by (le) "
                            "(rate(feedguard_responder_webhook_duration_seconds_bucket"
                            "[$__rate_interval])))",
                            "p50",
                        ),
                    ],
                    width=8,
                    unit="s",
                ),
                Panel(
                    "Notifications",
                    "timeseries",
                    [
                        Query(
                            "sum by (result) "
                            "(increase(feedguard_responder_notifications_total[$__rate_interval]))",
                            "{{result}}",
                        ),
                        Query(
                            "sum(increase(feedguard_responder_duplicates_suppressed_total"
                            "[$__rate_interval]))",
                            "duplicates suppressed",
                        ),
                    ],
                    width=8,
                ),
                Panel(
                    "Situation notes",
                    "timeseries",
                    [
                        Query(
                            "sum by (kind, result) "
                            "(increase(feedguard_responder_notes_total[$__rate_interval]))",
                            "{{kind}} {{result}}",
                        )
                    ],
                    "Slack notes (initial, hourly update, resolution) by result.",
                    width=8,
                    custom={"drawStyle": "bars", "fillOpacity": 60},
                ),
                Panel(
                    "Recovery probes",
                    "timeseries",
                    [
                        Query(
                            "sum by (provider, result) "
                            "(increase(feedguard_responder_recovery_probes_total"
                            "[$__rate_interval]))",
                            "{{provider}} {{result}}",
                        )
                    ],
                    "Runbook 5.1: recovery starts after two successful probes in a row.",
                    width=8,
                    custom={"drawStyle": "bars", "fillOpacity": 60},
                ),
                Panel(
                    "Circuit breakers open",
                    "stat",
                    [
                        Query(
                            "max by (circuit) (feedguard_responder_circuit_breaker_open)",
                            "{{circuit}}",
                            instant=True,
                        )
                    ],
                    width=8,
                    mappings=[value_map(("1", "open", "red"), ("0", "closed", "green"))],
                    options={"colorMode": "background"},
                ),
            ],
        ),
    ]
    return meta, rows


def variables(params: Params) -> list[Json]:
    provider_query = "label_values(external_provider_freshness_sla_seconds, provider)"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"selected": False, "text": params.datasource, "value": params.datasource},
            "hide": 0,
            "includeAll": False,
            "multi": False,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        {
            "name": "provider",
            "label": "Provider",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": provider_query,
            "query": {"query": provider_query, "refId": "PrometheusVariableQueryEditor"},
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "options": [],
        },
    ]


def _ids() -> Iterator[int]:
    n = 1
    while True:
        yield n
        n += 1


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    defaults: Json = {
        "thresholds": {
            "mode": "absolute",
            "steps": [{"value": value, "color": color} for value, color in panel.thresholds],
        },
        "mappings": list(panel.mappings),
    }
    if panel.unit:
        defaults["unit"] = panel.unit
    if panel.custom:
        defaults["custom"] = dict(panel.custom)
    targets = []
    for index, query in enumerate(panel.queries):
        target: Json = {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
        }
        if panel.kind == "table":
            target["format"] = "table"
        targets.append(target)
    options = dict(panel.options)
    if panel.kind == "table":
        options.setdefault("showHeader", True)
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": list(panel.overrides)},
        "options": options,
    }


def dashboard(meta: Json, rows: list[Row], params: Params) -> Json:
    ids = _ids()
    panels: list[Json] = []
    y = 0
    for row in rows:
        panels.append(
            {
                "id": next(ids),
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_panel_json(panel, next(ids), x, y))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return {
        **meta,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": variables(params)},
        "annotations": {"list": []},
        "links": [
            {
                "title": "External Data",
                "type": "dashboards",
                "tags": ["feedguard"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": panels,
        "version": 1,
    }


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Dumper(yaml.SafeDumper):
    """The dashboards' JSON as readable literal blocks."""


_Dumper.add_representer(str, _literal)


def configmaps(boards: dict[str, str]) -> str:
    """One ConfigMap per dashboard, labelled for the Grafana sidecar (grafana_dashboard: "1")."""
    documents = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"feedguard-dashboard-{name}",
                "labels": {"app.kubernetes.io/name": "feedguard", "grafana_dashboard": "1"},
                # The sidecar's folderAnnotation (kube-prometheus-stack: grafana_folder).
                "annotations": {"grafana_folder": "External Data"},
            },
            "data": {f"{name}.json": text},
        }
        for name, text in boards.items()
    ]
    header = (
        "# GENERATED by grafana/generate.py (the dashboards of grafana/dashboards/).\n"
        "# Do not edit: change the generator and regenerate.\n"
    )
    return header + yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, width=10_000)


def outputs(params: Params) -> dict[Path, str]:
    result = {}
    boards = {}
    for build, name in ((pipeline_freshness, "pipeline-freshness"), (services, "services")):
        meta, rows = build(params)
        text = json.dumps(dashboard(meta, rows, params), indent=2, sort_keys=False) + "\n"
        result[DASHBOARDS / f"{name}.json"] = text
        boards[name] = text
    result[CONFIGMAPS] = configmaps(boards)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when files are out of date")
    parser.add_argument("--out", type=Path, help="write the files into this directory instead")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        params = load(args)
    except ParamsError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2
    files = {args.out / p.name if args.out else p: text for p, text in outputs(params).items()}
    return write_or_check(files, check=args.check, command="python grafana/generate.py")


if __name__ == "__main__":
    sys.exit(main())
