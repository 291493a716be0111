"""compose.yml and the deploy/ files: every file they name exists and the real tools accept them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from .support.services import require_binary

REPO = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, object]:
    return yaml.safe_load((REPO / "compose.yml").read_text())


def test_compose_mounts_files_that_exist() -> None:
    compose = _compose()
    services = compose["services"]
    assert isinstance(services, dict)
    assert {"redis", "exporter", "responder", "prometheus", "alertmanager", "grafana"} <= set(
        services
    )
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is missing"


def test_compose_feeds_the_services_their_shipped_configs() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in ("exporter", "responder"):
        command = services[name]["command"]
        config = command[command.index("--config") + 1]
        assert (REPO / config).is_file(), f"{name} runs with {config}, which is missing"


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    # Laid out as compose mounts it: the config beside rules/.
    (tmp_path / "prometheus.yml").write_text(
        (REPO / "deploy/prometheus/prometheus.yml").read_text()
    )
    (tmp_path / "rules").symlink_to(REPO / "rules")
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_binary("amtool")
    result = subprocess.run(
        [amtool, "check-config", str(REPO / "deploy/compose/alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    receivers = yaml.safe_load((REPO / "deploy/compose/alertmanager.yml").read_text())["receivers"]
    hook = receivers[0]["webhook_configs"][0]
    assert hook["url"].endswith("/webhook/alertmanager")
    assert hook["send_resolved"] is True
