"""The repo's rules and dashboards on a real Prometheus scraping a real feedguard-exporter.

One module-scoped stack: redis-server (the session's, database 5 so the
per-test FLUSHDB of database 0 leaves it alone), a local HTTP server standing
in for the providers' health endpoints (one healthy, one failing: the
catalog's real provider URLs are never contacted), dbt's sources.json and a
GX validations store from tests/data (the dbt and quality collectors on),
``feedguard-exporter`` as a subprocess, and ``prometheus`` scraping it every
second with rules/*.rules.yml evaluated every second.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from feedguard.core.catalog import parse_catalog
from feedguard.core.record import record_success

from .support.dashboards import Target, targets
from .support.prometheus import PrometheusClient, Stack, exporter_stack, wait_for
from .support.services import Service

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((REPO / "rules").glob("*.rules.yml"))
REDIS_DB = 5
DATA = Path(__file__).resolve().parent / "data"

FRESH = ("EIA", "electricity_rto_region_data")
STALE = ("EIA", "natural_gas_weekly_storage")  # last success 20 minutes ago
UNRECORDED = ("EIA", "electricity_rto_fuel_type_data")  # no success recorded
MISO_FRESH = ("MISO", "lmp_realtime_5min")

# The DAG collector needs a running Airflow and the responder is not started
# here: panels over those series only have to run without error. Every other
# panel (freshness, providers, probes, dbt, quality, exporter) must show data.
NOT_SERVED = re.compile(r"external_dag|feedguard_responder")


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/consumer":
            # A consumer API (the scenario API) serving data loaded 30 s ago.
            body = json.dumps({"data": [{"updated_at": time.time() - 30}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        status = 200 if self.path == "/healthy" else 503
        body = b"ok" if status == 200 else b"upstream unavailable"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_service: Service, health_server: str
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("prometheus-e2e")
    redis_url = f"redis://127.0.0.1:{redis_service.port}/{REDIS_DB}"
    raw_catalog = {
        "providers": [
            {
                "name": "EIA",
                "datasets": [FRESH[1], STALE[1], UNRECORDED[1]],
                "health_probe": {"url": f"{health_server}/healthy", "timeout_seconds": 1},
                "freshness_sla_seconds": 900,
                "consumer_probes": [
                    {
                        "endpoint": "/v2/scenarios/eia",
                        "url": f"{health_server}/consumer",
                        "timestamp_pointer": "/data/0/updated_at",
                        "timeout_seconds": 1,
                    }
                ],
            },
            {
                "name": "MISO",
                "datasets": [MISO_FRESH[1]],
                "health_probe": {"url": f"{health_server}/broken", "timeout_seconds": 1},
                "freshness_sla_seconds": 900,
            },
        ]
    }
    catalog_file = work / "external_providers.yml"
    catalog_file.write_text(yaml.safe_dump(raw_catalog))
    catalog = parse_catalog(raw_catalog, str(catalog_file))

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    now = time.time()
    record_success(client, catalog, *FRESH, at=now, now=now)
    record_success(client, catalog, *MISO_FRESH, at=now, now=now)
    record_success(client, catalog, *STALE, at=now - 1200, now=now)
    client.set("external:provider_status:EIA", json.dumps({"status": "up", "checked_at": now}))
    client.set("external:provider_status:MISO", "down")

    # dbt 1.7's sources.json: iceberg_external tables in pass, warn, error, runtime error.
    dbt_target = work / "dbt-target"
    shutil.copytree(DATA / "dbt" / "dbt_1_7", dbt_target)
    # A failed run of external_dbt_outputs (GX 1.x result) a minute ago.
    run_time = datetime.fromtimestamp(now - 60, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    run_dir = work / "validations" / "external_dbt_outputs" / "checkpoint_run" / run_time
    run_dir.mkdir(parents=True)
    shutil.copy(DATA / "gx" / "gx1_validation_result.json", run_dir / "batch.json")

    exporter_config = {
        "catalog_file": str(catalog_file),
        "redis": {"url": redis_url},
        "probes": {"enabled": True},
        "dbt": {"enabled": True, "sources_json": str(dbt_target / "sources.json")},
        "quality": {"enabled": True, "validations_dir": str(work / "validations")},
        "log": {"format": "json"},
    }
    try:
        with exporter_stack(work, exporter_config, RULE_FILES) as stack:
            yield stack
    finally:
        client.flushdb()
        client.close()


def _alerts(prometheus: PrometheusClient, name: str) -> list[dict[str, Any]]:
    return [a for a in prometheus.alerts() if a["labels"]["alertname"] == name]


def _for(alerts: list[dict[str, Any]], provider: str, dataset: str) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts
        if a["labels"].get("provider") == provider and a["labels"].get("dataset") == dataset
    ]


def test_rules_load_and_evaluate_without_error(stack: Stack) -> None:
    groups = stack.prometheus.rules()
    files = {Path(group["file"]).name for group in groups}
    assert files == {path.name for path in RULE_FILES}
    rules = [rule for group in groups for rule in group["rules"]]
    expected = sum(
        len(group["rules"])
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
    )
    assert len(rules) == expected
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
        assert not rule.get("lastError"), rule["name"]


def test_stale_dataset_alert_becomes_pending_or_firing_and_fresh_ones_do_not(
    stack: Stack,
) -> None:
    prometheus = stack.prometheus
    stale = wait_for(
        "ExternalDataStale for the stale dataset",
        lambda: _for(_alerts(prometheus, "ExternalDataStale"), *STALE),
    )
    (alert,) = stale
    assert alert["state"] in {"pending", "firing"}
    assert alert["labels"] == {
        "alertname": "ExternalDataStale",
        "provider": "EIA",
        "dataset": STALE[1],
        "severity": "page",
        "team": "data-platform",
    }
    assert alert["annotations"]["runbook_url"] == "docs/runbook.md#externaldatastale"
    assert alert["annotations"]["dashboard_url"].endswith("pipeline-freshness?var-provider=EIA")
    assert "ago, beyond the provider's freshness SLA" in alert["annotations"]["description"]
    # The stale dataset's age as Prometheus sees it: about 20 minutes.
    (age,) = prometheus.query(f'external_data:age_seconds{{dataset="{STALE[1]}"}}')
    assert 1190 < float(age["value"][1]) < 1500

    # A few more evaluations: the fresh datasets never alert.
    time.sleep(3)
    alerts = _alerts(prometheus, "ExternalDataStale")
    assert [a["labels"]["dataset"] for a in alerts] == [STALE[1]]
    assert not _for(alerts, *FRESH)
    assert not _for(alerts, *MISO_FRESH)


def _settled(prometheus: PrometheusClient, name: str, key: Any, expected: list[Any]) -> None:
    """Wait until the alerts named ``name``, as ``key`` of each sorted, are ``expected``.

    Right after start-up an alert of the first evaluations (before the first
    scrape) may still be listed; what counts is what the alerts settle to.
    """
    found: list[Any] = []

    def check() -> bool:
        found[:] = sorted(key(a) for a in _alerts(prometheus, name))
        return found == expected

    try:
        wait_for(f"{name} to be {expected}", check, timeout=20)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {name} alerts were {found}") from None


def test_missing_and_provider_alerts_start_pending(stack: Stack) -> None:
    """The 15-minute alerts are pending for what this stack breaks, and for nothing else."""
    prometheus = stack.prometheus
    _settled(
        prometheus,
        "ExternalDataFreshnessMetricMissing",
        lambda a: (
            a["labels"]["reason"],
            a["labels"].get("provider"),
            a["labels"].get("dataset"),
            a["state"],
        ),
        [("not_recorded", *UNRECORDED, "pending")],
    )
    _settled(
        prometheus,
        "ExternalProviderDown",
        lambda a: (a["labels"]["provider"], a["labels"]["reason"], a["state"]),
        [("MISO", "probe_failing", "pending"), ("MISO", "status_down", "pending")],
    )


def test_quality_and_dbt_alerts_start_pending(stack: Stack) -> None:
    prometheus = stack.prometheus
    _settled(
        prometheus,
        "ExternalQualitySuiteFailed",
        lambda a: (a["labels"]["suite"], a["labels"]["severity"], a["state"]),
        [("external_dbt_outputs", "page", "pending")],
    )
    _settled(
        prometheus,
        "ExternalSourceFreshnessError",
        lambda a: (a["labels"]["source"], a["labels"]["table"], a["labels"]["status"]),
        [
            ("iceberg_external", "miso_lmp_realtime", "error"),
            ("iceberg_external", "noaa_ghcnd_daily", "runtime error"),
        ],
    )


def test_provider_variable_query_lists_the_catalog_providers(stack: Stack) -> None:
    values = stack.prometheus.label_values("provider", "external_provider_freshness_sla_seconds")
    assert values == ["EIA", "MISO"]


@pytest.mark.parametrize("target", targets(), ids=str)
def test_dashboard_query_runs_and_shows_data(stack: Stack, target: Target) -> None:
    """Every dashboard query runs; those over series this stack serves return data."""
    result = stack.prometheus.query(target.promql)
    if NOT_SERVED.search(target.expr):
        return
    assert result, f"{target}: no series for {target.promql}"
