"""Start real services (redis-server, prometheus, ...) on free loopback ports for tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        # `make test` installs every system package the suite needs; running
        # pytest by hand without them is a set-up mistake, not a skip.
        pytest.fail(f"{name} is not installed: run `make test` (it installs it) or apt-get it")
    return path


def with_parent(argv: Sequence[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when the test run dies (``setpriv
    --pdeathsig``, util-linux): a killed pytest (a CI timeout, ``kill``) leaves no
    redis-server or Airflow behind.  Only from the main thread: the signal follows the
    thread that started the process, and a worker thread may end before the service."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s; nothing when it has already exited."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(
    name: str,
    argv: Sequence[str],
    port: int,
    log_dir: Path,
    ready: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Service]:
    """Run a process until the block ends; wait until ``ready()`` (default: port open)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            with_parent(argv), stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )
    service = Service(name, process, port, log_path)
    check = ready or (lambda: port_open(port))
    try:
        deadline = time.monotonic() + timeout
        while not check():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{service.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout}s:\n{service.log()}")
            time.sleep(0.05)
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def redis_server(log_dir: Path, *extra: str) -> Iterator[Service]:
    """A redis-server on a free port; ``extra`` arguments are appended (e.g.
    ``--replicaof 127.0.0.1 <closed port>`` for a read-only replica)."""
    binary = require_binary("redis-server")
    port = free_port()
    argv = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(log_dir),
        *extra,
    ]  # fmt: skip
    with running("redis", argv, port, log_dir) as service:
        yield service
