"""``--version`` of both commands and ``feedguard_build_info`` on both services' /metrics."""

from __future__ import annotations

import platform
import subprocess
import urllib.request
from collections.abc import Iterator
from importlib import metadata

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .support.commands import BIN, Commands, both_services
from .support.services import Service

VERSION = metadata.version("feedguard")


@pytest.fixture(scope="module")
def commands(
    tmp_path_factory: pytest.TempPathFactory, redis_service: Service
) -> Iterator[Commands]:
    url = f"redis://127.0.0.1:{redis_service.port}/0"
    with both_services(tmp_path_factory.mktemp("commands"), url) as started:
        yield started


@pytest.mark.parametrize("name", ["exporter", "responder"])
def test_version_prints_the_installed_version(name: str) -> None:
    result = subprocess.run(
        [str(BIN / f"feedguard-{name}"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"feedguard-{name} {VERSION} (Python {platform.python_version()})"
    )


@pytest.mark.parametrize("name", ["exporter", "responder"])
def test_metrics_carry_build_info(commands: Commands, name: str) -> None:
    service: Service = getattr(commands, name)
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    (family,) = (
        f for f in text_string_to_metric_families(text) if f.name == "feedguard_build_info"
    )
    (sample,) = family.samples
    assert sample.labels == {"version": VERSION, "python_version": platform.python_version()}
    assert sample.value == 1
