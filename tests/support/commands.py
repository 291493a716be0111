"""Both services as their installed commands, on free loopback ports (what a pod runs)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .services import Service, free_port, running

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Commands:
    exporter: Service
    responder: Service


@contextlib.contextmanager
def both_services(tmp: Path, redis_url: str) -> Iterator[Commands]:
    """``feedguard-exporter`` and ``feedguard-responder`` on the shipped config files."""
    env = {
        **os.environ,
        "FEEDGUARD_REDIS_URL": redis_url,
        "FEEDGUARD_STORE_SQLITE_PATH": str(tmp / "responder.db"),
        "FEEDGUARD_LOG_FORMAT": "json",
    }
    with contextlib.ExitStack() as stack:
        services = []
        for name, config in (("exporter", "exporter.yml"), ("responder", "responder.yml")):
            port = free_port()
            argv = [
                str(BIN / f"feedguard-{name}"),
                "--config", str(REPO / "config" / config),
                "--listen", f"127.0.0.1:{port}",
            ]  # fmt: skip
            services.append(stack.enter_context(running(name, argv, port, tmp, env=env)))
        yield Commands(*services)
