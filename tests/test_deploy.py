"""compose.yml and the deploy/ files: every file they name exists and the real tools accept them."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from feedguard.core import healthcheck

from .support.commands import Commands
from .support.services import free_port, require_binary

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


def test_every_compose_service_has_a_healthcheck_and_waits_for_health() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"secrets"}
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
        for needed, how in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if needed in one_shot else "service_healthy"
            assert how == {"condition": wanted}, f"{name} -> {needed}"
    # The feedguard services' checks call their own listen port.
    for name in ("exporter", "responder"):
        command = services[name]["command"]
        port = command[command.index("--listen") + 1].rsplit(":", 1)[1]
        assert services[name]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/healthz"


def _secrets_command(root: Path) -> list[str]:
    command = _compose()["services"]["secrets"]["command"]  # type: ignore[index]
    return [part.replace("/run/feedguard", str(root)) for part in command]


def test_compose_secrets_are_generated_once(tmp_path: Path) -> None:
    command = _secrets_command(tmp_path)
    assert command[0] == "python"
    subprocess.run([sys.executable, *command[1:]], check=True)
    tokens = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert set(tokens) == {"webhook_token", "flags_token"}
    assert all(len(token.strip()) >= 32 for token in tokens.values())
    assert tokens["webhook_token"] != tokens["flags_token"]
    assert (tmp_path / "webhook_token").stat().st_mode & 0o777 == 0o644
    subprocess.run([sys.executable, *command[1:]], check=True)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == tokens


def _mounts(service: dict[str, object]) -> dict[str, str]:
    """Container path -> volume name (named volumes only)."""
    found = {}
    for volume in service.get("volumes", []):  # type: ignore[attr-defined]
        source, target = volume.split(":")[:2]
        if not source.startswith("."):
            found[target] = source
    return found


def test_compose_secret_files_and_data_volume_line_up() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    responder = services["responder"]
    env = responder["environment"]
    secrets_dir = next(t for t, v in _mounts(services["secrets"]).items() if v == "secrets")
    responder_secrets = next(t for t, v in _mounts(responder).items() if v == "secrets")
    assert responder_secrets == secrets_dir
    for key in ("FEEDGUARD_WEBHOOK_BEARER_TOKEN_FILE", "FEEDGUARD_FEATURES_TOKEN_FILE"):
        assert env[key].startswith(secrets_dir + "/"), key
    alertmanager = yaml.safe_load((REPO / "deploy/compose/alertmanager.yml").read_text())
    hook = alertmanager["receivers"][0]["webhook_configs"][0]
    assert (
        hook["http_config"]["authorization"]["credentials_file"]
        == (env["FEEDGUARD_WEBHOOK_BEARER_TOKEN_FILE"])
    )
    assert _mounts(services["alertmanager"])[secrets_dir] == "secrets"
    # The SQLite file lives on a named volume whose mount point the image's user owns:
    # Docker gives a new volume the owner of the image's directory.
    data_dir = str(Path(env["FEEDGUARD_STORE_SQLITE_PATH"]).parent)
    assert data_dir in _mounts(responder)
    dockerfile = (REPO / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user is not None
    for directory in (data_dir, secrets_dir):
        assert re.search(rf"mkdir -p [^\n]*{directory}\b", dockerfile), directory
        assert re.search(rf"chown {user[1]}:{user[2]} [^\n]*{directory}\b", dockerfile), directory


def test_image_installs_from_the_lock_and_is_labelled() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install --no-deps -r requirements.lock" in dockerfile
    assert "pip install --no-deps . && pip check" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n?.*feedguard\.core\.healthcheck", dockerfile, re.M)
    for label in ("title", "description", "version", "revision"):
        assert f"org.opencontainers.image.{label}=" in dockerfile, label
    # The uid deploy/ runs as.
    assert "USER 10001:10001" in dockerfile


def test_lock_pins_every_dependency_of_the_services() -> None:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for text in (*project["dependencies"], *extras["exporter"], *extras["responder"]):
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements.lock lacks {name}: run make lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {text}"


def test_image_healthcheck_follows_the_services_health(installed_services: Commands) -> None:
    for service in (installed_services.exporter, installed_services.responder):
        assert healthcheck.main([f"{service.url}/healthz"]) == 0
    dead = f"http://127.0.0.1:{free_port()}/healthz"
    result = subprocess.run(
        [sys.executable, "-m", "feedguard.core.healthcheck", dead],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: {dead}: ")
    # A service that answers, but not 200, is unhealthy too (the exporter's /readyz, Redis down).
    assert healthcheck.main([f"{installed_services.exporter.url}/readyz"]) == 1
