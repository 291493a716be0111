"""``make demo`` end to end: the real processes, a provider broken and recovered.

Runs ``python -m feedguard.demo`` as ``make demo`` does (from the repository,
on free loopback ports): once to the end with ``--exit-when-resolved``, once
interrupted with SIGINT as Ctrl-C would, checking that nothing it started is
left running.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "feedguard.demo", "--repo", str(REPO), *args]


def _ports(output: str) -> list[int]:
    return sorted({int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)/", output)})


def _closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _order(output: str, *needles: str) -> None:
    """Each needle appears, after the one before it."""
    position = 0
    for needle in needles:
        found = output.find(needle, position)
        assert found >= 0, f"{needle!r} missing (after offset {position}) in:\n{output}"
        position = found + len(needle)


def test_the_demo_runs_the_loop_to_a_resolved_incident(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    result = subprocess.run(
        _demo("--exit-when-resolved", "--timeout", "200", "--summary", str(summary_file)),
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,  # --repo says where the checkout is; nothing is written there
    )
    output = result.stdout
    assert result.returncode == 0, f"{output}\n{result.stderr}"
    _order(
        output,
        "alert pending: ExternalProviderDown{provider=ISO-NE}",
        "alert firing: ExternalProviderDown{provider=ISO-NE}",
        "notification received from Alertmanager",
        "incident opened: ISO-NE-",
        "planned (dry run): throttle_api: set AURUM_API_RATE_LIMIT_RPS=50",
        "recovering ISO-NE",
        "probe 2/2 ok (HTTP 200)",
        "provider recovered: running",
        "planned (dry run): trigger_backfill",
        "state resolved",
        "Resolved: ISO-NE",  # the resolution note
    )
    assert "Incident opened" in output or ":rotating_light:" in output  # the initial note
    summary: dict[str, Any] = json.loads(summary_file.read_text())
    incident = summary["incident"]
    assert incident["state"] == "resolved"
    assert incident["provider"] == "ISO-NE"
    assert {a["alertname"] for a in incident["alerts"]} == {
        "ExternalProviderDown",
        "ExternalDataStale",
    }
    actions = incident["actions"]
    assert {a["result"] for a in actions} == {"dry_run"}, "the demo runs in dry run"
    firing = [a for a in actions if a["phase"] == "firing"]
    recovery = [a for a in actions if a["phase"] == "recovery"]
    # The shipped playbooks: provider-down and stale-data, their shared steps planned once.
    assert {"throttle_api", "pause_dags", "read_cache", "trigger_fallback"} <= {
        a["action"] for a in firing
    }
    assert [a["target"] for a in firing if a["action"] == "pause_dags"] == [
        "pause DAG external_data_ingest",
        "pause DAG external_backfill",
    ]
    assert [a["action"] for a in recovery if not a.get("reverts")] == ["trigger_backfill"]
    # Every reversible firing step is reverted on recovery, exactly once.
    reverted = sorted(a["reverts"] for a in recovery if a.get("reverts"))
    assert reverted == sorted(a["key"] for a in firing if a["reversible"])
    initial, resolution = summary["notes"]
    assert "ISO-NE: external data incident" in initial
    assert "Resolved: ISO-NE" in resolution
    assert summary["first_planned_step_seconds"] > 0
    ports = _ports(output)
    assert len(ports) >= 3, output  # Prometheus, Alertmanager, responder
    assert all(_closed(p) for p in ports), "a process the demo started still listens"


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    process = subprocess.Popen(
        _demo("--timeout", "200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            # Just after start-up (the URLs printed): every process runs, none settled.
            if "Logs, configs" in line:
                break
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # (communicate() cannot see what the line iterator had buffered: the URLs are in lines.)
    output = "".join(lines) + rest
    assert process.returncode == 130, f"{output}\n{err}"
    assert "every process the demo started is stopped" in err
    ports = _ports(output)
    assert len(ports) >= 3, output
    assert all(_closed(p) for p in ports), "a process the demo started still listens"
