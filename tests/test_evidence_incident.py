"""A whole incident through the webhook with evidence and pause_streaming.

Alertmanager payload -> responder (real actions, real evidence gatherer) ->
the local Kubernetes API server (pods, pods/log, Secret metadata), the local
SeaTunnel REST API v2 server and the local Slack.  The evidence must be on the
incident (the API the incident page reads) and in the initial note; no Secret
data is ever requested, stored, posted or logged.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from feedguard.core.kube import METADATA_ONLY

from .conftest import make_catalog
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_seatunnel import FakeSeaTunnel
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.incidents import HOUR, T0
from .support.responder import (
    FLAGS_TOKEN,
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)

TOKEN = "xoxb-evidence"
SA = "sa-evidence"
NS = "aurum-dev"
SECRET = "external-provider-iso-ne"
SECRET_VALUE = "isone-live-key-7f3a9c"  # must never leave the fake API server
JOB = "isone-lmp-to-kafka"
CONFIG = 'env {\n  job.name = "isone-lmp-to-kafka"\n  job.mode = "STREAMING"\n}\n'
FIRST_ALERT = T0 - 60
ROTATED = FIRST_ALERT - 12 * 60


def cluster(clock: FakeClock) -> FakeKubernetes:
    kube = FakeKubernetes(now=clock.now)
    # Exactly the reads of deploy/'s Role for the evidence.
    kube.allow(SA, "pods", ["list"], namespaces=[NS])
    kube.allow(SA, "pods/log", ["get"], namespaces=[NS])
    kube.allow(SA, "secrets", ["get"], namespaces=[NS], names=[SECRET])
    labels = {"app": "external-collector"}
    kube.add_pod(NS, "collector-7d9f-a", labels)
    kube.add_pod(
        NS,
        "collector-7d9f-b",
        labels,
        ready=False,
        restarts=5,
        last_terminated="Error",
        waiting="CrashLoopBackOff",
    )
    kube.add_pod(NS, "api-1", {"app": "aurum-api"})  # not selected
    for minute in range(45):
        at = clock.now - 60 * (45 - minute)
        kube.add_log(NS, "collector-7d9f-a", "main", at, f"INFO fetched page {minute}")
    kube.add_log(
        NS,
        "collector-7d9f-b",
        "main",
        clock.now - 3000,  # older than 30 minutes: not read
        "ERROR stale error from an hour ago",
    )
    for minute in (20, 10, 5, 2, 1):
        kube.add_log(
            NS,
            "collector-7d9f-b",
            "main",
            clock.now - 60 * minute,
            f"ERROR GET https://webservices.iso-ne.com/api/v1.1/lmp?api_key={SECRET_VALUE} "
            f"-> 401 Unauthorized (attempt {minute})",
        )
    kube.add_secret(
        NS,
        SECRET,
        {"api_key": SECRET_VALUE},
        created=T0 - 90 * 86400,
        modified=[("kubectl-create", T0 - 90 * 86400), ("vault-sync", ROTATED)],
    )
    return kube


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


def config(tmp_path: Path, slack: FakeSlack, kube_url: str, seatunnel_url: str, **extra: Any):  # type: ignore[no-untyped-def]  # test helper
    job_config = tmp_path / f"{JOB}.conf.tmpl"
    job_config.write_text(CONFIG)
    catalog = make_catalog(
        {
            "ISO-NE": {
                "datasets": ["lmp_realtime_5min"],
                "streaming_jobs": [{"name": JOB, "config_file": str(job_config)}],
                "workloads": [{"namespace": NS, "selector": "app=external-collector"}],
                "credentials": [{"namespace": NS, "name": SECRET}],
            }
        }
    )
    return responder_config(
        tmp_path,
        catalog=catalog,
        playbooks=[
            {
                "name": "provider-down",
                "matchers": ['alertname="ExternalProviderDown"'],
                "firing": [{"action": "pause_streaming"}],
                "resolved": [{"revert": "all"}],
            }
        ],
        actions={
            "kubernetes": {"host": kube_url, "token": SA, "timeout_seconds": 5},
            "seatunnel": {"base_url": seatunnel_url},
            "streaming": {"poll_seconds": 0.01},
        },
        notes={"slack_token": TOKEN, "base_url": slack.api_url},
        **extra,
    )


DOWN = alert("ISO-NE", "ExternalProviderDown", starts_at=FIRST_ALERT)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, kube: FakeKubernetes, **extra: Any
) -> AsyncIterator[tuple[Responder, FakeSeaTunnel]]:
    """The responder with the ISO-NE job running, the alert already sent and acted on."""
    seatunnel = FakeSeaTunnel()
    seatunnel.add(JOB)
    async with kube.serve() as kube_url, seatunnel.serve() as st_url:
        cfg = config(tmp_path, slack, kube_url, st_url, **extra)
        async with start_responder(cfg, clock=clock) as responder:
            await send(responder, DOWN)
            yield responder, seatunnel


async def send(responder: Responder, alert: dict[str, Any]) -> None:
    assert (await responder.post(notification([alert]))).status == 200
    await responder.settle()
    await responder.tick()


async def test_incident_carries_the_evidence_and_the_note_quotes_it(
    tmp_path: Path, slack: FakeSlack
) -> None:
    clock = FakeClock(T0)
    kube = cluster(clock)
    with structlog.testing.capture_logs() as logs:
        async with running(tmp_path, slack, clock, kube) as (responder, seatunnel):
            (job,) = seatunnel.jobs.values()
            opened = await responder.incident("ISO-NE")
            async with responder.session.get(f"{responder.url}/incidents/{opened['id']}") as page:
                assert page.status == 200
                html = await page.text()

            clock.advance(HOUR + 5)
            kube.now = clock.now
            kube.add_log(NS, "collector-7d9f-a", "main", clock.now - 30, "FATAL out of memory")
            await responder.tick()
            hourly = await responder.incident("ISO-NE")

            clock.advance(300)
            await send(responder, resolved(DOWN, ends_at=clock.now - 10))
            await responder.tick()
            final = await responder.incident("ISO-NE")

    # --- the evidence on the incident (what the incident page shows) -------------
    (snapshot,) = opened["evidence"]
    assert snapshot["slot"] == 0
    assert snapshot["dry_run"] is False
    (workload,) = snapshot["workloads"]
    assert [p["name"] for p in workload["pods"]] == ["collector-7d9f-a", "collector-7d9f-b"]
    assert workload["not_ready"] == ["collector-7d9f-b"]
    assert workload["restarts"] == 5
    pod_b = workload["pods"][1]
    assert pod_b["waiting"] == {"main": "CrashLoopBackOff"}
    assert pod_b["last_terminated"] == {"main": "Error"}
    lines = [e["line"] for e in workload["error_lines"]]
    assert len(lines) == 5  # the hour-old error is outside sinceSeconds=1800
    assert lines[0] == (
        "ERROR GET https://webservices.iso-ne.com/api/v1.1/lmp?api_key=*** "
        "-> 401 Unauthorized (attempt 20)"
    )
    assert all(e["pod"] == "collector-7d9f-b" for e in workload["error_lines"])
    assert workload["error_lines"][0]["at_iso"].startswith("20")
    (credential,) = snapshot["credentials"]
    assert credential["modified_by"] == "vault-sync"
    assert credential["note"] == "rotated 12 min before the first alert"
    assert any("rotated 12 min before the first alert" in s for s in snapshot["summary"])
    assert any("not ready: collector-7d9f-b" in s for s in snapshot["summary"])

    # --- the incident page shows it (HTML, escaped) ------------------------------
    assert "<h2>Evidence (runbook 4)</h2>" in html
    assert "rotated 12 min before the first alert" in html
    assert "main: CrashLoopBackOff, main last ended Error" in html
    assert "lmp?api_key=*** -&gt; 401 Unauthorized (attempt 1)" in html
    assert "5 of 5 error line(s), newest first" in html
    assert SECRET_VALUE not in html

    # --- the hourly update gathered again ----------------------------------------
    assert [s["slot"] for s in hourly["evidence"]] == [0, 1]
    newest = hourly["evidence"][1]["workloads"][0]["error_lines"][-1]
    assert newest["line"] == "FATAL out of memory"

    # --- the notes ----------------------------------------------------------------
    initial, update, *_rest = (m.text for m in slack.messages)
    assert "*Evidence (runbook 4):*" in initial
    assert f"secret {NS}/{SECRET}: rotated 12 min before the first alert" in initial
    assert "not ready: collector-7d9f-b" in initial
    assert "collector-7d9f-b: ERROR GET https://webservices.iso-ne.com" in initial
    assert "3 of 5 error line(s); all on the incident page" in initial
    assert "collector-7d9f-a: FATAL out of memory" in update

    # --- pause_streaming stopped the job and resubmitted it from its savepoint ----
    assert [(a["action"], a["phase"], a["result"]) for a in final["actions"]] == [
        ("pause_streaming", "firing", "success"),
        ("pause_streaming", "recovery", "success"),
    ]
    assert final["state"] == "resolved"
    ((query, body),) = seatunnel.posts("/submit-job")
    assert f"jobId={job.job_id}" in query
    assert "isStartWithSavePoint=true" in query
    assert body == CONFIG
    assert seatunnel.jobs[job.job_id].restored_from_savepoint

    # --- no Secret data anywhere ---------------------------------------------------
    assert kube.secret_reads()
    assert {accept for _, accept in kube.secret_reads()} == {METADATA_ONLY}
    everything = json.dumps([opened, hourly, final]) + "".join(m.text for m in slack.messages)
    assert SECRET_VALUE not in everything
    gathered = [e for e in logs if e["event"] == "evidence gathered"]
    assert len(gathered) == 2  # the log does see the evidence: at opening and the hour
    assert any("rotated 12 min" in line for line in gathered[0]["summary"])
    assert SECRET_VALUE not in repr(logs)


async def test_dry_run_plans_the_evidence_and_reads_nothing(
    tmp_path: Path, slack: FakeSlack
) -> None:
    clock = FakeClock(T0)
    kube = cluster(clock)
    async with running(tmp_path, slack, clock, kube, dry_run=True) as (responder, seatunnel):
        doc = await responder.incident("ISO-NE")
        flag = await responder.get_json(
            "/runtime-config/v1/features/dry_run",
            headers={"Authorization": f"Bearer {FLAGS_TOKEN}"},
        )
    assert flag["enabled"] is True
    (snapshot,) = doc["evidence"]
    assert snapshot["dry_run"] is True
    assert snapshot["would_read"] == [
        f"list pods -n {NS} -l app=external-collector; logs of each container "
        "(sinceSeconds=1800, tailLines=2000, limitBytes=262144), error lines kept (at most 50)",
        f"secret {NS}/{SECRET}: metadata only (PartialObjectMetadata)",
    ]
    assert kube.reads == []  # nothing was read
    assert [(a["action"], a["result"]) for a in doc["actions"]] == [("pause_streaming", "dry_run")]
    assert seatunnel.posts("/stop-job") == []
    initial = slack.messages[0].text
    assert "*Evidence (runbook 4, dry run):*" in initial
    assert f"would read: secret {NS}/{SECRET}: metadata only" in initial


async def test_unreadable_evidence_is_recorded_and_the_runbook_goes_on(
    tmp_path: Path, slack: FakeSlack
) -> None:
    clock = FakeClock(T0)
    kube = cluster(clock)
    kube.read_rules[SA] = [r for r in kube.read_rules[SA] if r.resource != "secrets"]
    async with running(tmp_path, slack, clock, kube) as (responder, _):
        doc = await responder.incident("ISO-NE")
    (credential,) = doc["evidence"][0]["credentials"]
    assert "HTTP 403" in credential["error"]
    assert "forbidden" in credential["error"]
    assert doc["actions"][0]["result"] == "success"
    assert f"secret {NS}/{SECRET}: unreadable (HTTP 403" in slack.messages[0].text
