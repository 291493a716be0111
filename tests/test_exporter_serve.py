"""The real ``feedguard-exporter`` process: serves, logs JSON, takes --listen and FEEDGUARD_*."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog

from feedguard.exporter.app import create_app

from .exporter_support import config_for, make_catalog, value
from .support.services import Service, free_port, running

EXPORTER = str(Path(sys.executable).parent / "feedguard-exporter")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serves_metrics_and_logs_json(
    tmp_path: Path, redis_service: Service, redis_url: str, redis_client: redis.Redis
) -> None:
    (tmp_path / "catalog.yml").write_text(
        "providers:\n  - name: EIA\n    datasets: [rto]\n  - name: NOAA\n    datasets: [ghcnd]\n"
    )
    config = tmp_path / "exporter.yml"
    # Redis from the file points nowhere; the environment wins.
    config.write_text("catalog_file: catalog.yml\nredis: {url: 'redis://127.0.0.1:1/0'}\n")
    redis_client.set("external:last_success:EIA:rto", "1700000000")
    redis_client.set("external:provider_status:NOAA", "{broken")
    port = free_port()
    argv = [EXPORTER, "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    env = {
        "PATH": "/usr/bin:/bin",
        "FEEDGUARD_REDIS_URL": redis_url,
        "FEEDGUARD_LOG_FORMAT": "json",
    }
    with running("exporter", argv, port, tmp_path, env=env) as service:
        status, text = get(f"{service.url}/metrics")
        assert status == 200
        assert value(text, "external_data_last_success_timestamp", provider="EIA", dataset="rto")
        assert (
            value(text, "external_data_last_success_recorded", provider="NOAA", dataset="ghcnd")
            == 0
        )
        assert value(text, "external_provider_status", provider="NOAA", status="unknown") == 1
        assert get(f"{service.url}/readyz")[0] == 200
        get(f"{service.url}/metrics")  # the same bad value again: not logged twice
    lines = [json.loads(line) for line in service.log().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "starting" in events
    assert "exporter ready" in events
    malformed = [line for line in lines if line["event"] == "malformed redis value"]
    assert len(malformed) == 1
    assert malformed[0]["key"] == "external:provider_status:NOAA"
    assert malformed[0]["level"] == "warning"
    assert "timestamp" in malformed[0]


def test_bad_listen_is_a_config_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [EXPORTER, "check-config", "--config", "config/exporter.yml", "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "--listen: expected HOST:PORT, got 'nowhere'"


async def test_bad_value_logged_again_after_a_fix(
    aiohttp_client: Any, redis_url: str, redis_client: redis.Redis
) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    client = await aiohttp_client(create_app(config_for(catalog, redis_url, probes=False)))
    key = "external:last_success:EIA:rto"
    with structlog.testing.capture_logs() as logs:
        for raw in ("bad", "bad", "1700000000", "bad"):
            redis_client.set(key, raw)
            assert (await client.get("/metrics")).status == 200
    warnings = [entry for entry in logs if entry["event"] == "malformed redis value"]
    assert [entry["key"] for entry in warnings] == [key, key]
    assert warnings[0]["problem"] == "not epoch seconds: b'bad'"


@pytest.mark.parametrize("path", ["/metrics", "/"])
async def test_head_requests(aiohttp_client: Any, redis_url: str, path: str) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    client = await aiohttp_client(create_app(config_for(catalog, redis_url, probes=False)))
    response = await client.head(path)
    assert response.status == 200
