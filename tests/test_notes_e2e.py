"""Notes end to end: Alertmanager webhook -> responder (scheduler ticks) -> local Slack.

Two responder apps share one Redis store, as two replicas would; the test
advances their common clock, ticks both (repeatedly) and reads the Slack
thread back: initial, update 1, update 2, resolution, each exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, ClassVar

import pytest

from feedguard.responder.config import ResponderConfig
from feedguard.responder.plugins import Outcome, StepContext, Target

from .conftest import make_catalog
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.incidents import HOUR, T0
from .support.lineage_failure import keep_lineage_failure
from .support.responder import (
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
    wait_for,
)

TOKEN = "xoxb-e2e-token"
DASHBOARD = "http://localhost:3000/d/feedguard-pipeline-freshness/pipeline-freshness"


class PauseDags:
    """A stand-in runbook action (the real ones are tested against their systems)."""

    name: ClassVar[str] = "pause_dags"
    reversible: ClassVar[bool] = True
    circuit: ClassVar[str] = "airflow"

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        return [Target("pause DAG external_data_ingest", "airflow:dag:external_data_ingest")]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        return Outcome(previous=False)

    async def revert(self, ctx: StepContext, target: Target, previous: Any) -> Outcome:
        return Outcome()


class TriggerBackfill:
    name: ClassVar[str] = "trigger_backfill"
    reversible: ClassVar[bool] = False
    circuit: ClassVar[str] = "airflow"

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        return [Target("trigger DAG external_data_backfill", None)]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        return Outcome(detail={"dag_run_id": "backfill__e2e"})

    async def revert(self, ctx: StepContext, target: Target, previous: Any) -> Outcome:
        return Outcome()


ACTIONS = {"pause_dags": PauseDags(), "trigger_backfill": TriggerBackfill()}


def config(tmp_path: Path, slack: FakeSlack, redis_url: str) -> ResponderConfig:
    catalog = make_catalog(
        {
            "EIA": {
                "datasets": ["electricity_rto_region_data"],
                "dags": ["external_data_ingest"],
                # No health probe: recovery runs as soon as the alerts resolve.
                "dashboards": [
                    {"title": "Pipeline freshness", "url": f"{DASHBOARD}?var-provider=EIA"}
                ],
            }
        }
    )
    return responder_config(
        tmp_path,
        catalog=catalog,
        store="redis",
        redis_url=redis_url,
        playbooks=[
            {
                "name": "external-data",
                "matchers": ['alertname=~"External.*"'],
                "firing": [{"action": "pause_dags"}],
                "resolved": [{"revert": "all"}, {"action": "trigger_backfill"}],
            }
        ],
        notes={"slack_token": TOKEN, "base_url": slack.api_url, "max_retry_after_seconds": 5},
    )


STALE = alert(
    "EIA",
    "ExternalDataStale",
    starts_at=T0 - 60,
    dataset="electricity_rto_region_data",
)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack(token=TOKEN) as fake:
        yield fake


async def tick_all(replicas: Sequence[Responder]) -> None:
    """All replicas tick at once (racing for the same slots), then each once more."""
    await asyncio.gather(*(r.engine.tick() for r in replicas))
    await asyncio.gather(*(r.settle() for r in replicas))
    for replica in replicas:  # ticking again must not post anything twice
        await replica.tick()


async def test_notes_of_an_incident_across_two_replicas(
    tmp_path: Path, slack: FakeSlack, redis_url: str
) -> None:
    clock = FakeClock(T0)
    cfg = config(tmp_path, slack, redis_url)
    async with AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(start_responder(cfg, clock=clock, actions=ACTIONS))
            for _ in range(2)
        ]
        a, b = replicas

        response = await a.post(notification([STALE]))
        assert response.status == 200
        await a.settle()
        await tick_all(replicas)
        assert len(slack.messages) == 1  # the initial note, at once

        clock.now = T0 + HOUR + 5
        await tick_all(replicas)
        clock.now = T0 + HOUR + 30  # still the same hourly slot
        await tick_all(replicas)
        clock.now = T0 + 2 * HOUR + 5
        await tick_all(replicas)
        # A replica started now (a restart) shares the store: it posts nothing again.
        replicas.append(
            await stack.enter_async_context(start_responder(cfg, clock=clock, actions=ACTIONS))
        )
        await tick_all(replicas)
        assert len(slack.messages) == 3

        clock.now = T0 + 2 * HOUR + 900
        response = await b.post(notification([resolved(STALE, ends_at=clock.now - 30)]))
        assert response.status == 200
        await b.settle()
        await tick_all(replicas)
        clock.advance(60)
        await tick_all(replicas)

        # The thread key is kept on the incident, where every replica finds it.
        incident = await replicas[2].incident("EIA")

    root = slack.messages[0]
    thread = slack.thread(root.ts)
    assert [m.thread_ts for m in thread] == [None, root.ts, root.ts, root.ts]
    assert len(slack.messages) == 4, [m.text.splitlines()[0] for m in slack.messages]
    initial, update1, update2, resolution = (m.text for m in thread)

    assert initial.splitlines()[0] == (
        ":rotating_light: *[2026-11-26 01:00 UTC] EIA: external data incident* · "
        "first alert: *ExternalDataStale* · dashboards: "
        f"<{DASHBOARD}?var-provider=EIA|Pipeline freshness> · next update 2026-11-26 02:00 UTC"
    )
    assert update1.splitlines()[0].startswith(
        ":hourglass_flowing_sand: *[2026-11-26 02:00 UTC] Update 1: EIA* · open for 1h 00m"
    )
    assert "• pause DAG external_data_ingest: success at 2026-11-26 01:00 UTC" in update1
    assert "*Next update:* 2026-11-26 03:00 UTC" in update1
    assert update2.splitlines()[0].startswith(
        ":hourglass_flowing_sand: *[2026-11-26 03:00 UTC] Update 2: EIA* · open for 2h 00m"
    )
    assert "*Next update:* 2026-11-26 04:00 UTC" in update2
    assert resolution.splitlines()[0].startswith(":white_check_mark: *[2026-11-26 03:15 UTC]")
    assert "*Cause (as far as known):* ExternalDataStale for EIA" in resolution
    assert (
        "• electricity_rto_region_data: stale for 2h 15m "
        "(2026-11-26 00:59 UTC to 2026-11-26 03:14 UTC)"
    ) in resolution
    assert "• undo: pause DAG external_data_ingest: success" in resolution
    assert "*Data backfill:* triggered (dag_run_id=backfill__e2e)" in resolution
    assert "☐ Data quality audit: *Data Engineering*" in resolution
    # No lineage failure kept for EIA in Redis: no line, nothing on the incident.
    assert "Last pipeline failure" not in initial
    assert incident["lineage_failure"] is None

    assert incident["state"] == "resolved"
    assert incident["notes"]["slack_ts"] == root.ts
    assert incident["notes"]["slack_channel"] == "C0DATAPLAT"


def single_replica_config(tmp_path: Path, slack: FakeSlack) -> ResponderConfig:
    catalog = make_catalog({"EIA": {"datasets": ["electricity_rto_region_data"]}})
    return responder_config(
        tmp_path,
        catalog=catalog,
        playbooks=[
            {
                "name": "external-data",
                "matchers": ['alertname=~"External.*"'],
                "firing": [{"action": "pause_dags"}],
                "resolved": [{"revert": "all"}],
            }
        ],
        notes={
            "slack_token": TOKEN,
            "base_url": slack.api_url,
            "max_retry_after_seconds": 5,
            "max_retries": 1,
        },
    )


async def test_the_initial_note_names_the_providers_recent_lineage_failure(
    tmp_path: Path, slack: FakeSlack, redis_url: str
) -> None:
    hostile = "<!channel> see <http://evil.example|here> & retry\nTraceback, line 2"
    await keep_lineage_failure(redis_url, "EIA", T0 - 300, hostile)
    clock = FakeClock(T0)
    cfg = config(tmp_path, slack, redis_url)
    async with start_responder(cfg, clock=clock, actions=ACTIONS) as responder:
        assert (await responder.post(notification([STALE]))).status == 200
        await responder.settle()
        await responder.tick()
        incident = await responder.incident("EIA")

    assert incident["lineage_failure"]["message"] == hostile
    text = slack.messages[0].text
    lines = [line for line in text.splitlines() if "Last pipeline failure" in line]
    assert len(lines) == 1, text
    # The message renders inert, on one line: Slack sees no mention and no link.
    assert lines[0] == (
        "*Last pipeline failure (OpenLineage):* FAIL of external_data_ingest.run at "
        "2026-11-26 00:55 UTC: &lt;!channel&gt; see &lt;http://evil.example|here&gt; "
        "&amp; retry Traceback, line 2"
    )
    assert "<!channel>" not in text
    assert "<http://evil" not in text


async def test_a_refused_note_is_recorded_and_remediation_goes_on(
    tmp_path: Path, slack: FakeSlack
) -> None:
    slack.fail_next("channel_not_found")
    clock = FakeClock(T0)
    async with start_responder(
        single_replica_config(tmp_path, slack), clock=clock, actions=ACTIONS
    ) as responder:
        assert (await responder.post(notification([STALE]))).status == 200
        await responder.settle()
        await responder.tick()
        incident = await responder.incident("EIA")
        metrics = await responder.metrics()

    assert incident["state"] == "stabilised"  # the runbook step ran regardless
    failed = [e for e in incident["timeline"] if e["event"] == "note failed: initial:0"]
    assert len(failed) == 1
    assert failed[0]["error"] == (
        "NoteDeliveryError: Slack chat.postMessage failed: channel_not_found"
    )
    assert slack.messages == []  # tick() does not post the claimed slot again
    assert 'feedguard_responder_notes_total{kind="initial",result="failure"} 1.0' in metrics


async def test_a_rate_limited_slack_does_not_delay_remediation(
    tmp_path: Path, slack: FakeSlack
) -> None:
    slack.rate_limit_next(1, retry_after=2)
    clock = FakeClock(T0)
    async with start_responder(
        single_replica_config(tmp_path, slack), clock=clock, actions=ACTIONS
    ) as responder:
        assert (await responder.post(notification([STALE]))).status == 200

        async def stabilised() -> bool:
            return [i["state"] for i in await responder.incidents()] == ["stabilised"]

        await wait_for(stabilised, within=10)
        # The step is done while the initial note still waits out Retry-After.
        assert slack.messages == []
        posts = [r for r in slack.requests if r.path == "/api/chat.postMessage"]
        assert [r.status for r in posts] == [429]
        await responder.settle()

    assert len(slack.messages) == 1
    posts = [r for r in slack.requests if r.path == "/api/chat.postMessage"]
    assert [r.status for r in posts] == [429, 200]
