"""What was installed: ``--version`` of both commands and ``feedguard_build_info``."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # prometheus_client is the services' dependency, not record-success's
    from prometheus_client import CollectorRegistry

BUILD_INFO = "feedguard_build_info"


def version() -> str:
    """The installed distribution's version (a source tree that was never installed has none)."""
    try:
        return metadata.version("feedguard")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def version_text(prog: str) -> str:
    return f"{prog} {version()} (Python {platform.python_version()})"


def register_build_info(registry: CollectorRegistry) -> None:
    """``feedguard_build_info{version, python_version} 1`` on ``registry``."""
    from prometheus_client import Gauge

    Gauge(
        BUILD_INFO,
        "1, labelled with the installed feedguard version and the Python running it.",
        ["version", "python_version"],
        registry=registry,
    ).labels(version(), platform.python_version()).set(1)
