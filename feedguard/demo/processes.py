"""Start the demo's processes on free loopback ports, wait until they answer, stop them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp


class DemoError(Exception):
    """Something the demo needs is missing or did not start; the message says what."""


class Interrupted(Exception):  # it is a signal, not an error
    """SIGINT or SIGTERM arrived: the demo stops what it started and exits."""


# Set by the signal handler, checked by every wait loop: cancelling the task alone is
# not enough, since a cancel landing in aiohttp's request timeout can surface as a
# TimeoutError that a poll treats as "not answering yet".
_STOP: list[str] = []


def request_stop(signal_name: str) -> None:
    _STOP.append(signal_name)


def check_stop() -> None:
    if _STOP:
        raise Interrupted(_STOP[0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binary(name: str, hint: str = "run `make system-deps` (it installs it)") -> str:
    path = shutil.which(name)
    if path is None:
        raise DemoError(f"{name} is not installed: {hint}")
    return path


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def http_ok(session: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    return check


@dataclass
class Running:
    name: str
    process: asyncio.subprocess.Process
    log_path: Path


@dataclass
class Processes:
    """The processes the demo started, stopped together (newest first)."""

    workdir: Path
    running: list[Running] = field(default_factory=list)

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        ready: Callable[[], Awaitable[bool]],
        *,
        env: dict[str, str] | None = None,
        within: float = 60.0,
    ) -> Running:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log_file:
            # A session of its own: Ctrl-C reaches the demo, which stops them in order.
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        item = Running(name, process, log_path)
        self.running.append(item)
        deadline = time.monotonic() + within
        while not await ready():
            check_stop()
            if process.returncode is not None:
                raise DemoError(f"{name} exited with {process.returncode}; log: {log_path}")
            if time.monotonic() > deadline:
                raise DemoError(f"{name} did not answer within {within:.0f}s; log: {log_path}")
            await asyncio.sleep(0.1)
        return item

    async def stop_all(self) -> None:
        for item in reversed(self.running):
            process = item.process
            if process.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.running.clear()


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without FEEDGUARD_* (the demo's settings only), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
    env.update(extra)
    return env
