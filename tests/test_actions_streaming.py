"""pause_streaming against the local SeaTunnel REST API v2 server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from feedguard.core.catalog import StreamingJob
from feedguard.core.seatunnel import SeaTunnelClient, SeaTunnelSettings
from feedguard.responder.actions.pause_streaming import PauseStreaming
from feedguard.responder.plugins import ActionError, StepContext, Target

from .support.action_context import context, provider
from .support.fake_seatunnel import FakeSeaTunnel

JOB = "isone-lmp-to-kafka"
CONFIG = 'env {\n  job.name = "isone-lmp-to-kafka"\n  job.mode = "STREAMING"\n}\n'


@pytest.fixture
async def seatunnel() -> AsyncIterator[tuple[FakeSeaTunnel, SeaTunnelClient]]:
    fake = FakeSeaTunnel(settle_reads=2)
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        yield fake, SeaTunnelClient(session, SeaTunnelSettings(base_url=url))


def prepared(
    client: SeaTunnelClient, folder: object, timeout: float = 5, config_file: str | None = None
) -> tuple[PauseStreaming, StepContext, Target]:
    """The action, an ISO-NE incident's context and its one target."""
    action = PauseStreaming(client, str(folder), timeout, poll_seconds=0.01)
    ctx = context(iso_ne(config_file))
    (target,) = action.targets(ctx)
    return action, ctx, target


def templates(tmp_path: Path, text: str = CONFIG) -> Path:
    folder = tmp_path / "seatunnel" / "jobs" / "templates"
    folder.mkdir(parents=True)
    (folder / f"{JOB}.conf.tmpl").write_text(text)
    return folder


def iso_ne(config_file: str | None = None):  # type: ignore[no-untyped-def]  # test helper
    return provider(streaming_jobs=(StreamingJob(name=JOB, config_file=config_file),))


async def test_stop_with_savepoint_then_resubmit_from_it(
    seatunnel: tuple[FakeSeaTunnel, SeaTunnelClient], tmp_path: Path
) -> None:
    fake, client = seatunnel
    job = fake.add(JOB)
    other = fake.add("unrelated")
    folder = templates(tmp_path)
    action, ctx, target = prepared(client, folder)
    assert target.resource == f"seatunnel:job:{JOB}"
    outcome = await action.apply(ctx, target)
    assert fake.jobs[job.job_id].status == "SAVEPOINT_DONE"
    assert outcome.changed
    assert outcome.previous["job_id"] == job.job_id
    assert CONFIG not in repr(outcome.previous)  # the ledger keeps a hash, not the config
    reverted = await action.revert(ctx, target, outcome.previous)
    _stop_query, stop_body = fake.posts("/stop-job")[0]
    assert stop_body == f'{{"jobId": {job.job_id}, "isStopWithSavePoint": true}}'
    ((submit_query, submit_body),) = fake.posts("/submit-job")
    assert f"jobId={job.job_id}" in submit_query
    assert "isStartWithSavePoint=true" in submit_query
    assert "format=hocon" in submit_query
    assert f"jobName={JOB}" in submit_query
    assert submit_body == CONFIG
    resumed = fake.jobs[job.job_id]
    assert (resumed.status, resumed.restored_from_savepoint) == ("RUNNING", True)
    assert reverted.detail["submitted_job_id"] == job.job_id
    assert other.status == "RUNNING"  # only the provider's job was touched


async def test_a_job_whose_config_cannot_be_read_is_never_stopped(
    seatunnel: tuple[FakeSeaTunnel, SeaTunnelClient], tmp_path: Path
) -> None:
    fake, client = seatunnel
    fake.add(JOB)
    action, ctx, target = prepared(client, tmp_path / "missing")
    with pytest.raises(ActionError, match="cannot read the job config") as caught:
        await action.apply(ctx, target)
    assert not caught.value.retryable
    assert fake.posts("/stop-job") == []


async def test_a_job_not_running_is_left_alone_both_ways(
    seatunnel: tuple[FakeSeaTunnel, SeaTunnelClient], tmp_path: Path
) -> None:
    fake, client = seatunnel
    fake.add(JOB, "FAILED")
    config = tmp_path / "isone.json"
    config.write_text('{"env": {"job.name": "isone-lmp-to-kafka"}}')
    action, ctx, target = prepared(client, "unused", config_file=str(config))
    outcome = await action.apply(ctx, target)
    assert not outcome.changed
    assert outcome.previous == {"stopped_by_feedguard": False}
    assert "not in /running-jobs" in outcome.detail["note"]
    reverted = await action.revert(ctx, target, outcome.previous)
    assert not reverted.changed
    assert fake.posts("/stop-job") == []
    assert fake.posts("/submit-job") == []


async def test_a_slow_savepoint_is_retried_and_recognised_as_ours(
    seatunnel: tuple[FakeSeaTunnel, SeaTunnelClient], tmp_path: Path
) -> None:
    fake, client = seatunnel
    fake.settle_reads = 5
    job = fake.add(JOB)
    folder = templates(tmp_path)
    # Gives up after the first poll: the savepoint is still being taken.
    action, ctx, target = prepared(client, folder, timeout=0.001)
    with pytest.raises(ActionError, match="savepoint not done") as caught:
        await action.apply(ctx, target)
    assert caught.value.retryable
    patient = PauseStreaming(client, str(folder), 5, poll_seconds=0.01)
    outcome = await patient.apply(ctx, target)
    assert outcome.previous["job_id"] == job.job_id
    assert len(fake.posts("/stop-job")) == 1  # the retry did not stop it again


async def test_someone_restarted_the_job_meanwhile(
    seatunnel: tuple[FakeSeaTunnel, SeaTunnelClient], tmp_path: Path
) -> None:
    fake, client = seatunnel
    fake.add(JOB)
    folder = templates(tmp_path)
    action, ctx, target = prepared(client, folder)
    outcome = await action.apply(ctx, target)
    restarted = fake.add(JOB)  # an operator submitted it again
    reverted = await action.revert(ctx, target, outcome.previous)
    assert not reverted.changed
    assert restarted.job_id in reverted.detail["note"]
    assert fake.posts("/submit-job") == []


def test_parameters_are_checked() -> None:
    action = PauseStreaming(None, "t", 5)  # type: ignore[arg-type]  # targets() does no I/O
    with pytest.raises(ActionError, match="unknown parameter"):
        action.targets(context(iso_ne(), params={"dags": []}))
    with pytest.raises(ActionError, match="not in streaming_jobs of ISO-NE"):
        action.targets(context(iso_ne(), params={"jobs": ["nope"]}))
    assert action.targets(context(provider())) == []


async def test_an_engine_error_quoting_the_config_is_redacted(
    seatunnel: tuple[FakeSeaTunnel, SeaTunnelClient], tmp_path: Path
) -> None:
    fake, client = seatunnel
    fake.add(JOB)
    folder = templates(tmp_path, 'source { Http { url = "x", password = "kafka-pw-42" } }\n')
    action, ctx, target = prepared(client, folder)
    outcome = await action.apply(ctx, target)
    fake.reject_submit = "ConfigRuntimeException: bad config"
    with pytest.raises(ActionError, match="bad config") as caught:
        await action.revert(ctx, target, outcome.previous)
    assert 'password = "kafka-pw-42"' in fake.posts("/submit-job")[0][1]  # it was quoted
    assert "kafka-pw-42" not in str(caught.value)
    assert 'password = "***"' in str(caught.value)
