"""The demo's configuration files and processes: everything under one work directory."""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .processes import Processes, binary, clean_env, free_port, http_ok, port_open
from .standin import StandIn

# The Prometheus job name the rules' ExternalDataFreshnessMetricMissing expects
# (rules/generator/thresholds.yml: exporter_job).
EXPORTER_JOB = "feedguard-exporter"


@dataclass
class Urls:
    redis: str
    exporter: str
    responder: str
    prometheus: str
    alertmanager: str


def _write(path: Path, data: Any, mode: int = 0o644) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(mode)
    return path


def demo_catalog(repo: Path, standin: StandIn) -> dict[str, Any]:
    """The shipped catalog with every health probe pointed at the stand-in."""
    catalog: dict[str, Any] = yaml.safe_load((repo / "config/external_providers.yml").read_text())
    for provider in catalog["providers"]:
        if provider.get("health_probe"):
            provider["health_probe"] = {
                **provider["health_probe"],
                "url": standin.health_url(provider["name"]),
                "timeout_seconds": 2,
            }
    return catalog


def responder_settings(repo: Path, workdir: Path, port: int, redis_url: str) -> dict[str, Any]:
    """The shipped config/responder.yml (its playbooks), in dry run, fast recovery probes."""
    shipped: dict[str, Any] = yaml.safe_load((repo / "config/responder.yml").read_text())
    return {
        **shipped,
        "listen": f"127.0.0.1:{port}",
        "catalog_file": str(workdir / "external_providers.yml"),
        "dry_run": True,
        "store": {"backend": "sqlite", "sqlite_path": str(workdir / "responder.db")},
        "redis": {"url": redis_url, "socket_timeout_seconds": 2},
        "recovery": {**shipped.get("recovery", {}), "probe_interval_seconds": 1},
        "scheduler": {"tick_seconds": 0.5},
        "notes": {**shipped.get("notes", {}), "enabled": True},
        "log": {"level": "info", "format": "json"},
    }


def prometheus_settings(rules_dir: Path, exporter: int, responder: int, am: int) -> Any:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_dir / "*.rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am}"]}]}]},
        "scrape_configs": [
            {"job_name": EXPORTER_JOB, "static_configs": [{"targets": [f"127.0.0.1:{exporter}"]}]},
            {
                "job_name": "feedguard-responder",
                "static_configs": [{"targets": [f"127.0.0.1:{responder}"]}],
            },
        ],
    }


def alertmanager_settings(responder: int, token_file: Path) -> Any:
    """As docs/responder.md tells operators, with the demo's short group timers."""
    return {
        "route": {
            "receiver": "feedguard",
            "group_by": ["provider"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "4h",
        },
        "receivers": [
            {
                "name": "feedguard",
                "webhook_configs": [
                    {
                        "url": f"http://127.0.0.1:{responder}/webhook/alertmanager",
                        "send_resolved": True,
                        "max_alerts": 0,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(token_file),
                            }
                        },
                    }
                ],
            }
        ],
    }


async def generate_rules(repo: Path, out: Path) -> None:
    """The demo profile of rules/generator (shorter ``for:``), never a hand-edited copy."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(repo / "rules/generator/generate.py"),
        "--profile",
        "demo",
        "--out",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"rule generator failed: {output.decode(errors='replace')}")


@dataclass
class Secrets:
    webhook_token: str
    features_token: str


async def start_stack(
    repo: Path,
    workdir: Path,
    processes: Processes,
    standin: StandIn,
    session: aiohttp.ClientSession,
) -> tuple[Urls, Secrets]:
    """Write every config under ``workdir`` and start the five processes."""
    bindir = Path(sys.executable).parent
    tools = {
        name: binary(name) for name in ("redis-server", "prometheus", "prometheus-alertmanager")
    }
    ports = {name: free_port() for name in ("redis", "exporter", "responder", "prom", "am")}
    redis_url = f"redis://127.0.0.1:{ports['redis']}/0"
    keys = Secrets(secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    token_file = workdir / "alertmanager-token"
    token_file.write_text(keys.webhook_token)
    token_file.chmod(0o600)

    _write(workdir / "external_providers.yml", demo_catalog(repo, standin))
    exporter_yml = _write(
        workdir / "exporter.yml",
        {
            "listen": f"127.0.0.1:{ports['exporter']}",
            "catalog_file": str(workdir / "external_providers.yml"),
            "redis": {"url": redis_url, "socket_timeout_seconds": 2},
            "probes": {"enabled": True},
            "log": {"level": "info", "format": "json"},
        },
    )
    responder_yml = _write(
        workdir / "responder.yml",
        responder_settings(repo, workdir, ports["responder"], redis_url),
    )
    rules_dir = workdir / "rules"
    await generate_rules(repo, rules_dir)
    prometheus_yml = _write(
        workdir / "prometheus.yml",
        prometheus_settings(rules_dir, ports["exporter"], ports["responder"], ports["am"]),
    )
    am_yml = _write(
        workdir / "alertmanager.yml", alertmanager_settings(ports["responder"], token_file)
    )

    urls = Urls(
        redis=redis_url,
        exporter=f"http://127.0.0.1:{ports['exporter']}",
        responder=f"http://127.0.0.1:{ports['responder']}",
        prometheus=f"http://127.0.0.1:{ports['prom']}",
        alertmanager=f"http://127.0.0.1:{ports['am']}",
    )
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    redis_argv = [tools["redis-server"], "--port", str(ports["redis"]), "--bind", "127.0.0.1"]
    redis_argv += ["--save", "", "--appendonly", "no", "--dir", str(redis_dir)]
    await processes.start("redis-server", redis_argv, lambda: port_open(ports["redis"]))
    responder_env = clean_env(
        FEEDGUARD_WEBHOOK_BEARER_TOKEN=keys.webhook_token,
        FEEDGUARD_FEATURES_TOKEN=keys.features_token,
        FEEDGUARD_NOTES_WEBHOOK_URL=standin.slack_url,
    )
    # The Python services and the Go ones start side by side: most of the wait is
    # the interpreters importing their stacks.
    await asyncio.gather(
        processes.start(
            "feedguard-exporter",
            [str(bindir / "feedguard-exporter"), "--config", str(exporter_yml)],
            http_ok(session, f"{urls.exporter}/healthz"),
            env=clean_env(),
        ),
        processes.start(
            "feedguard-responder",
            [str(bindir / "feedguard-responder"), "--config", str(responder_yml)],
            http_ok(session, f"{urls.responder}/readyz"),
            env=responder_env,
        ),
        processes.start(
            "alertmanager",
            [
                tools["prometheus-alertmanager"],
                f"--config.file={am_yml}",
                f"--storage.path={workdir / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{ports['am']}",
                "--cluster.listen-address=",
            ],
            http_ok(session, f"{urls.alertmanager}/-/ready"),
        ),
    )
    # Prometheus last: scraping an exporter that is not up yet would start the
    # ExternalDataFreshnessMetricMissing clock for nothing.
    await processes.start(
        "prometheus",
        [
            tools["prometheus"],
            f"--config.file={prometheus_yml}",
            f"--storage.tsdb.path={workdir / 'prometheus'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{ports['prom']}",
            f"--web.console.templates={workdir}",
            f"--web.console.libraries={workdir}",
        ],
        http_ok(session, f"{urls.prometheus}/-/ready"),
    )
    return urls, keys
