"""``--version`` of both commands and ``feedguard_build_info`` on both services' /metrics."""

from __future__ import annotations

import platform
import subprocess
import urllib.request
from importlib import metadata

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .support.commands import BIN, Commands
from .support.services import Service

VERSION = metadata.version("feedguard")


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
def test_metrics_carry_build_info(installed_services: Commands, name: str) -> None:
    service: Service = getattr(installed_services, name)
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    (family,) = (
        f for f in text_string_to_metric_families(text) if f.name == "feedguard_build_info"
    )
    (sample,) = family.samples
    assert sample.labels == {"version": VERSION, "python_version": platform.python_version()}
    assert sample.value == 1
