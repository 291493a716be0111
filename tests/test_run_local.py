"""`make run` (scripts/run-local): its redis-server keeps what was recorded across a restart."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import redis

from .support.services import free_port, require_binary, running

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "run-local"


def persistence_args() -> list[str]:
    """The redis-server options run-local starts its Redis with (REDIS_PERSIST=(...))."""
    match = re.search(r"^\s*REDIS_PERSIST=\((.*)\)\s*$", SCRIPT.read_text(), re.MULTILINE)
    assert match, "scripts/run-local defines REDIS_PERSIST=(...)"
    return shlex.split(match.group(1))


def test_recorded_values_survive_a_restart_of_make_runs_redis(tmp_path: Path) -> None:
    args = persistence_args()
    assert args[args.index("--dir") + 1] == "var"
    work = tmp_path / "checkout"
    (work / "var").mkdir(parents=True)
    port = free_port()
    argv = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", *args]
    key = "external:last_success:EIA:natural_gas_weekly_storage"
    with running("redis-1", argv, port, tmp_path, cwd=work), redis.Redis(port=port) as client:
        client.set(key, "1764547200")
    # Stopped with SIGTERM, as Ctrl-C in `make run` does; started again.
    with running("redis-2", argv, port, tmp_path, cwd=work), redis.Redis(port=port) as client:
        assert client.get(key) == b"1764547200"
    assert (work / "var" / "appendonlydir").is_dir()
