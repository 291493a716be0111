"""Real ``prometheus-alertmanager`` processes (Debian package) on free loopback ports.

``alertmanager(...)`` runs one; ``alertmanager_cluster(...)`` runs an HA cluster
whose peers gossip over loopback (``--cluster.listen-address``,
``--cluster.advertise-address``, ``--cluster.peer``).  Each posts its one route's
groups to the given webhook URLs with ``http_config.authorization`` (bearer), the
way docs/responder.md tells operators to configure it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .services import Service, free_port, require_binary, running


def alertmanager_config(
    webhook_urls: Sequence[str],
    *,
    bearer_token: str | None = None,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    max_alerts: int = 0,
) -> dict[str, Any]:
    webhooks = []
    for url in webhook_urls:
        hook: dict[str, Any] = {"url": url, "send_resolved": True, "max_alerts": max_alerts}
        if bearer_token is not None:
            hook["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer_token}}
        webhooks.append(hook)
    return {
        "route": {
            "receiver": "feedguard",
            "group_by": ["provider"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "feedguard", "webhook_configs": webhooks}],
    }


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def alertmanager(
    workdir: Path,
    config: Mapping[str, Any],
    *,
    name: str = "alertmanager",
    cluster_port: int | None = None,
    peers: Sequence[int] = (),
) -> Iterator[Service]:
    """One Alertmanager; ``cluster_port`` None runs it without clustering."""
    binary = require_binary("prometheus-alertmanager")
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(dict(config)))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=debug",
    ]
    if cluster_port is None:
        argv.append("--cluster.listen-address=")
    else:
        argv += [
            f"--cluster.listen-address=127.0.0.1:{cluster_port}",
            # Two peers on one host: advertise the loopback address, not a guessed one.
            f"--cluster.advertise-address=127.0.0.1:{cluster_port}",
            "--cluster.peer-timeout=2s",
            "--cluster.gossip-interval=100ms",
            "--cluster.pushpull-interval=1s",
        ]
        argv += [f"--cluster.peer=127.0.0.1:{peer}" for peer in peers]
    with running(name, argv, port, home, ready=lambda: _ready(port), timeout=30) as service:
        yield service


@contextlib.contextmanager
def alertmanager_cluster(
    workdir: Path, config: Mapping[str, Any], size: int = 2
) -> Iterator[list[Service]]:
    cluster_ports = [free_port() for _ in range(size)]
    with contextlib.ExitStack() as stack:
        services = [
            stack.enter_context(
                alertmanager(
                    workdir,
                    config,
                    name=f"alertmanager-{index}",
                    cluster_port=cluster_ports[index],
                    peers=[p for p in cluster_ports if p != cluster_ports[index]],
                )
            )
            for index in range(size)
        ]
        yield services


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def post_alerts(service: Service, alerts: Sequence[Mapping[str, Any]]) -> None:
    """POST /api/v2/alerts (what Prometheus does); raises on a non-200 answer."""
    request = urllib.request.Request(
        f"{service.url}/api/v2/alerts",
        data=json.dumps(list(alerts)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200, response.read()


def cluster_status(service: Service) -> dict[str, Any]:
    with urllib.request.urlopen(f"{service.url}/api/v2/status", timeout=5) as response:
        body: dict[str, Any] = json.load(response)
    return body
