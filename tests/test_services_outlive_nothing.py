"""The services the tests start die with the test run: a pytest killed outright (a CI
timeout, ``kill -9``) leaves no redis-server or Airflow running (``with_parent``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .support.services import require_binary

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.support.services import running, free_port
port = free_port()
argv = [{redis!r}, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
with running("redis", argv, port, Path({logs!r})) as service:
    print(service.process.pid, flush=True)
    time.sleep(60)
"""


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def test_a_killed_test_run_takes_its_services_with_it(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    code = CHILD.format(root=root, redis=require_binary("redis-server"), logs=str(tmp_path))
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert run.stdout is not None
    service_pid = int(run.stdout.readline())
    assert not gone(service_pid)
    run.kill()  # no finally block, no fixture teardown runs
    run.wait()
    deadline = time.monotonic() + 10
    while not gone(service_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert gone(service_pid), "redis-server outlived the killed test run"
    finally:
        if not gone(service_pid):
            os.kill(service_pid, signal.SIGKILL)
