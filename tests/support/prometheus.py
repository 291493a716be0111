"""A real ``prometheus`` (Debian package) on a free loopback port, and a small API client."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .services import Service, free_port, require_binary, running


class PrometheusError(AssertionError):
    """Prometheus answered an API call with an error (the message says which)."""


class PrometheusClient:
    """The HTTP API calls the tests need (https://prometheus.io/docs/prometheus/latest/querying/api/)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, params: Mapping[str, str | Sequence[str]] | None = None) -> Any:
        query = urllib.parse.urlencode(params or {}, doseq=True)
        url = f"{self.url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            # 400/422/503 carry {"status": "error", "errorType", "error"}.
            raise PrometheusError(f"GET {path} {params}: {exc.code} {exc.read()!r}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"GET {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (a scalar comes back as one pseudo-series)."""
        data = self.get("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.get("/api/v1/rules")["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v1/alerts")["alerts"]
        return alerts

    def targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.get("/api/v1/targets")["activeTargets"]
        return targets

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self.get(f"/api/v1/label/{label}/values", {"match[]": match})
        return values

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25
) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def prometheus_config(
    jobs: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path],
    interval: str = "1s",
) -> dict[str, Any]:
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
            for job, targets in jobs.items()
        ],
    }


@contextlib.contextmanager
def prometheus_server(
    work_dir: Path,
    jobs: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path] = (),
    interval: str = "1s",
) -> Iterator[tuple[Service, PrometheusClient]]:
    """Run prometheus scraping ``jobs`` ({job_name: [host:port, ...]}) with ``rule_files``."""
    binary = require_binary("prometheus")
    port = free_port()
    config = work_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(jobs, rule_files, interval)))
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={work_dir / 'data'}",
        "--storage.tsdb.retention.time=1h",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        # No console templates in the Debian layout under a temp dir: not needed by the API.
        f"--web.console.templates={work_dir}",
        f"--web.console.libraries={work_dir}",
    ]
    client = PrometheusClient(f"http://127.0.0.1:{port}")
    with running("prometheus", argv, port, work_dir, ready=client.ready, timeout=60) as service:
        yield service, client


@dataclass
class Stack:
    prometheus: PrometheusClient
    prometheus_service: Service
    exporter: Service


def _target_up(prometheus: PrometheusClient, job: str) -> bool:
    return any(t["labels"].get("job") == job and t["health"] == "up" for t in prometheus.targets())


def _all_rules_evaluated(prometheus: PrometheusClient) -> bool:
    rules = [rule for group in prometheus.rules() for rule in group["rules"]]
    return bool(rules) and all(rule["health"] != "unknown" for rule in rules)


def exporter_command(
    work_dir: Path, exporter_config: Mapping[str, Any], port: int
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of ``feedguard-exporter`` serving ``exporter_config`` (its YAML)."""
    config_file = work_dir / "exporter.yml"
    config_file.write_text(yaml.safe_dump(dict(exporter_config)))
    argv = [
        str(Path(sys.executable).parent / "feedguard-exporter"),
        "--config",
        str(config_file),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    # The test's settings only, not whatever FEEDGUARD_* the shell has.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
    return argv, env


@contextlib.contextmanager
def exporter_stack(
    work_dir: Path,
    exporter_config: Mapping[str, Any],
    rule_files: Sequence[Path],
    interval: str = "1s",
) -> Iterator[Stack]:
    """``feedguard-exporter`` (subprocess, ``exporter_config`` as its YAML) scraped as job
    ``feedguard-exporter`` by a prometheus evaluating ``rule_files``, both every ``interval``
    (also the scrape timeout, less the exporter's margin its deadline).

    Yields once the target is up and every rule has been evaluated once.
    """
    port = free_port()
    argv, env = exporter_command(work_dir, exporter_config, port)
    with (
        running("feedguard-exporter", argv, port, work_dir, env=env) as exporter,
        prometheus_server(work_dir, {"feedguard-exporter": [f"127.0.0.1:{port}"]}, rule_files) as (
            service,
            prometheus,
        ),
    ):
        wait_for(
            "the exporter target to be up", lambda: _target_up(prometheus, "feedguard-exporter")
        )
        wait_for("every rule to be evaluated", lambda: _all_rules_evaluated(prometheus))
        yield Stack(prometheus, service, exporter)
