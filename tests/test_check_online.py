"""``feedguard-responder check-config --online`` against the real Airflow 3 and
Alertmanager, and the local Kubernetes, runtime-config and Slack servers: one
line per target, ok or problem, exit 2 on any problem, nothing changed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedguard.responder.__main__ import main

from .support.airflow import AirflowInstance
from .support.alertmanager import alertmanager, alertmanager_config
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.services import free_port

NS, CM, KEY = "aurum-dev", "aurum-api-config", "AURUM_API_RATE_LIMIT_RPS"
FEATURE = "external_read_cache"
SLACK_TOKEN = "xoxb-online-check"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=SLACK_TOKEN) as fake:
        yield fake


def write_config(
    tmp_path: Path,
    airflow: AirflowInstance,
    kube_url: str,
    runtime_url: str,
    slack: FakeSlack,
    *,
    dags: list[str],
    kube_token: str = "sa-token",
) -> Path:
    data: dict[str, Any] = {
        "store": {"sqlite_path": str(tmp_path / "responder.db")},
        "actions": {
            "airflow": {
                "base_url": airflow.base_url,
                "version": "3",
                "username": airflow.username,
                "password": airflow.password,
            },
            "kubernetes": {"host": kube_url, "token": kube_token, "timeout_seconds": 5},
            "runtime_config": {"base_url": runtime_url, "token": "rc-token"},
        },
        "notes": {"slack_token": SLACK_TOKEN, "base_url": slack.api_url},
        "catalog": {"providers": [{"name": "ISO-NE", "datasets": ["lmp"], "dags": dags}]},
    }
    path = tmp_path / "responder.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.airflow
async def test_online_check_says_ok_or_problem_per_target(
    tmp_path: Path,
    airflow_instance: AirflowInstance,
    slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube = FakeKubernetes()
    kube.grant("sa-token", names=[(NS, CM)])
    kube.grant("read-only", verbs=("get",), names=[(NS, CM)])
    kube.put(NS, CM, {KEY: "200"})
    runtime = FakeRuntimeConfig.with_features([FEATURE], token="rc-token")
    with alertmanager(tmp_path, alertmanager_config(["http://127.0.0.1:9/"])) as am:
        async with kube.serve() as kube_url, runtime.serve() as runtime_url:
            good = write_config(
                tmp_path,
                airflow_instance,
                kube_url,
                runtime_url,
                slack,
                dags=["external_data_ingest", "external_backfill"],
            )
            status = await _run(
                ["check-config", "--online", "--config", str(good), "--alertmanager-url", am.url]
            )
            out = capsys.readouterr().out.splitlines()
            assert status == 0, out
            lines = {line.split(": ")[1]: line for line in out if line.count(": ") >= 2}
            assert lines[f"airflow {airflow_instance.base_url}"].startswith("ok: ")
            assert lines[f"configmap {NS}/{CM}"] == (
                f"ok: configmap {NS}/{CM}: exists, {KEY}='200', a dry-run patch was accepted"
            )
            assert lines[f"runtime-config feature {FEATURE}"].startswith("ok: ")
            assert lines[f"slack {slack.api_url}"] == (
                f"ok: slack {slack.api_url}: auth.test ok as feedguard in Feedguard Test"
            )
            assert lines[f"alertmanager {am.url}"].startswith("ok: ")
            # The dry run changed nothing.
            assert kube.data(NS, CM) == {KEY: "200"}

            # Everything wrong at once: each target says its own problem.
            runtime.features.clear()
            slack.token = "xoxb-rotated"
            bad = write_config(
                tmp_path,
                airflow_instance,
                kube_url,
                runtime_url,
                slack,
                dags=["external_data_ingest", "no_such_dag"],
                kube_token="read-only",
            )
            gone = f"http://127.0.0.1:{free_port()}"
            status = await _run(
                ["check-config", "--online", "--config", str(bad), "--alertmanager-url", gone]
            )
            out = capsys.readouterr().out.splitlines()
    assert status == 2
    problems = [line for line in out if line.startswith("problem: ")]
    assert len(problems) == 5, out
    text = "\n".join(problems)
    assert "DAGs not found: no_such_dag" in text
    assert "forbidden" in text  # the dry-run patch refused by RBAC
    assert f"runtime-config feature {FEATURE}: HTTP 404" in text
    assert "auth.test failed: invalid_auth" in text
    assert f"alertmanager {gone}: not reachable" in text
    assert kube.data(NS, CM) == {KEY: "200"}


async def _run(argv: list[str]) -> int:
    # main() runs its own event loop: off this one.
    return await asyncio.to_thread(main, argv)


def test_online_needs_a_valid_config_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "responder.yml"
    bad.write_text(json.dumps({"dry_run": "maybe"}))
    assert main(["check-config", "--online", "--config", str(bad)]) == 2
    assert capsys.readouterr().out == ""
