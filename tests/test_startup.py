"""Start-up tells the truth: a port in use or an unusable SQLite file is one line
and exit 2 (never a traceback after start-up logged progress), a second responder
on the same SQLite file refuses to start, and "responder ready" is logged only
once the state store answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from feedguard.responder.app import create_app
from feedguard.responder.store import open_store
from feedguard.responder.store.base import StoreUnusable

from .conftest import make_catalog
from .support.responder import responder_config
from .support.services import free_port, running

BIN = Path(sys.executable).parent
CATALOG = make_catalog({"EIA": {"datasets": ["rto"]}})


def run(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # the embedded defaults work from any working directory
        env={"PATH": "/usr/bin:/bin", "FEEDGUARD_LOG_FORMAT": "json", **env},
        check=False,
    )


@pytest.mark.parametrize("command", ["feedguard-exporter", "feedguard-responder"])
def test_a_port_in_use_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            [str(BIN / command), "--listen", f"127.0.0.1:{port}"],
            tmp_path,
            FEEDGUARD_STORE_SQLITE_PATH=str(tmp_path / "r.db"),
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{command}: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert "ready" not in result.stdout


def test_an_sqlite_file_that_cannot_be_opened_stops_the_start(tmp_path: Path) -> None:
    not_a_db = tmp_path / "responder.db"
    not_a_db.write_text("this is not an SQLite database, it is notes.txt\n" * 100)
    port = free_port()
    result = run(
        [str(BIN / "feedguard-responder"), "--listen", f"127.0.0.1:{port}"],
        tmp_path,
        FEEDGUARD_STORE_SQLITE_PATH=str(not_a_db),
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"feedguard-responder: sqlite {not_a_db}: cannot open: ")
    assert "file is not a database" in line
    assert "responder ready" not in result.stdout


def test_a_second_responder_on_the_same_sqlite_file_refuses(tmp_path: Path) -> None:
    db = tmp_path / "responder.db"
    first_port, second_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "FEEDGUARD_LOG_FORMAT": "json",
        "FEEDGUARD_STORE_SQLITE_PATH": str(db),
    }
    argv = [str(BIN / "feedguard-responder"), "--listen", f"127.0.0.1:{first_port}"]
    with running("first", argv, first_port, tmp_path, env=env, cwd=tmp_path):
        second = run(
            [str(BIN / "feedguard-responder"), "--listen", f"127.0.0.1:{second_port}"],
            tmp_path,
            FEEDGUARD_STORE_SQLITE_PATH=str(db),
        )
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"feedguard-responder: sqlite {db}: another feedguard-responder is using this file"
        f" (it holds {db}.lock); one responder per SQLite file"
    )


async def test_the_lock_is_released_on_close(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=CATALOG)
    first = open_store(config)
    await first.open()
    second = open_store(config)
    with pytest.raises(StoreUnusable, match="another feedguard-responder"):
        await second.open()
    await second.close()
    await first.close()
    again = open_store(config)
    await again.open()
    await again.close()


async def test_ready_is_logged_only_when_the_store_answers(
    tmp_path: Path, aiohttp_client: object
) -> None:
    # A Redis store nobody listens on: the service starts and says it is not ready.
    url = f"redis://127.0.0.1:{free_port()}/0"
    config = responder_config(tmp_path, catalog=CATALOG, store="redis", redis_url=url)
    with capture_logs() as logs:
        client = await aiohttp_client(create_app(config, background=False))  # type: ignore[operator]
        assert (await client.get("/readyz")).status == 503
        await client.close()
    events = [e["event"] for e in logs]
    assert "responder not ready: state store unavailable" in events
    assert "responder ready" not in events


def test_ready_is_logged_by_a_started_responder(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "FEEDGUARD_LOG_FORMAT": "json",
        "FEEDGUARD_STORE_SQLITE_PATH": str(tmp_path / "r.db"),
    }
    argv = [str(BIN / "feedguard-responder"), "--listen", f"127.0.0.1:{port}"]

    def ready() -> bool:
        log = (tmp_path / "resp.log").read_text() if (tmp_path / "resp.log").exists() else ""
        return '"responder ready"' in log

    with running("resp", argv, port, tmp_path, env=env, cwd=tmp_path, ready=ready) as service:
        lines = [json.loads(x) for x in service.log().splitlines() if x.startswith("{")]
    assert [e["event"] for e in lines].count("responder ready") == 1
    assert os.path.exists(tmp_path / "r.db.lock")


@pytest.mark.parametrize("command", ["feedguard-exporter", "feedguard-responder"])
def test_embedded_defaults_work_from_any_directory(command: str, tmp_path: Path) -> None:
    result = run([str(BIN / command), "check-config"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")
    assert "4 providers" in result.stdout  # the shipped catalog, installed with the package
