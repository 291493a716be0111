"""A ``feedguard-responder`` process for replica tests: start it, SIGKILL it, stop it.

Minimal on purpose (the notes takeover tests need one responder process at a time
it can kill); the same shape as the crash tests' harness (``Replica.create``,
``start``, ``kill``, ``stop``), so the two can become one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .services import free_port, stop_process


@dataclass
class Replica:
    name: str
    port: int
    config_file: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(
        cls,
        workdir: Path,
        name: str,
        config: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
    ) -> Replica:
        home = workdir / name
        home.mkdir(parents=True, exist_ok=True)
        config_file = home / "responder.yml"
        config_file.write_text(yaml.safe_dump(dict(config)))
        base = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
        return cls(
            name=name,
            port=free_port(),
            config_file=config_file,
            log_path=home / "responder.log",
            env={**base, "FEEDGUARD_LOG_FORMAT": "json", **(env or {})},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self) -> None:
        argv = [
            sys.executable, "-m", "feedguard.responder",
            "--config", str(self.config_file),
            "--listen", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                argv, stdout=log_file, stderr=subprocess.STDOUT, env=self.env
            )

    async def start(self) -> None:
        """Spawn it and wait until it answers /healthz (at most a minute)."""
        self.spawn()
        async with (
            asyncio.timeout(60.0),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
        ):
            while True:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited:\n{self.log()[-4000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)  # polling another process's start-up

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or released."""
        assert self.process is not None
        assert self.alive, f"{self.name} is not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
