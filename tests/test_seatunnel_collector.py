"""The SeaTunnel collector and client against the local REST API v2 server."""

from __future__ import annotations

import aiohttp
import pytest
import structlog
from aiohttp.test_utils import TestClient

from feedguard.core.seatunnel import (
    SeaTunnelClient,
    SeaTunnelRefused,
    SeaTunnelSettings,
    SeaTunnelUnavailable,
)
from feedguard.exporter.app import create_app
from feedguard.exporter.collectors.base import Deadline
from feedguard.exporter.collectors.seatunnel import SeaTunnelCollector
from feedguard.exporter.config import load_config
from feedguard.exporter.scrape import gather, render

from .conftest import REPO, make_catalog
from .support.fake_seatunnel import FakeSeaTunnel
from .support.families import samples, value

CATALOG = make_catalog(
    {
        "ISO-NE": {
            "streaming_jobs": [{"name": "isone-lmp-to-kafka"}, {"name": "isone-load-to-kafka"}]
        },
        "MISO": {"streaming_jobs": [{"name": "miso-lmp-to-kafka"}]},
        "OFF": {"enabled": False, "streaming_jobs": [{"name": "off-job"}]},
    }
)


def status_of(found: dict, job: str) -> str:  # type: ignore[type-arg]  # test helper
    on = [
        dict(labels)["status"]
        for (name, labels), v in found.items()
        if name == "external_streaming_job_status"
        and dict(labels)["streaming_job"] == job
        and v == 1
    ]
    assert len(on) == 1, on
    return on[0]


async def test_job_states_counts_and_cluster() -> None:
    fake = FakeSeaTunnel(context_path="/seatunnel")
    fake.add("isone-lmp-to-kafka", "FAILED")
    fake.add("isone-lmp-to-kafka", "RUNNING")
    fake.add("isone-load-to-kafka", "CANCELED")
    fake.add("isone-load-to-kafka", "FAILED")
    fake.add("isone-load-to-kafka", "FAILED")
    fake.add("unrelated", "RUNNING")
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        settings = SeaTunnelSettings(enabled=True, base_url=url, context_path="/seatunnel")
        collector = SeaTunnelCollector(SeaTunnelClient(session, settings), CATALOG)
        found = samples(await collector.collect(Deadline.in_seconds(5)))
    assert status_of(found, "isone-lmp-to-kafka") == "RUNNING"
    # The newest finished run (the fake finishes them in the order added).
    assert status_of(found, "isone-load-to-kafka") == "FAILED"
    assert status_of(found, "miso-lmp-to-kafka") == "NOT_FOUND"
    assert not any(dict(k[1]).get("streaming_job") == "off-job" for k in found)
    labels = {"provider": "ISO-NE", "streaming_job": "isone-load-to-kafka"}
    assert value(found, "external_streaming_job_failed_runs", **labels) == 2
    assert value(found, "external_streaming_job_cancelled_runs", **labels) == 1
    assert value(found, "external_streaming_job_last_running_timestamp", **labels) is None
    running = {"provider": "ISO-NE", "streaming_job": "isone-lmp-to-kafka"}
    assert value(found, "external_streaming_job_last_running_timestamp", **running)
    assert value(found, "external_streaming_cluster_jobs", state="running") == 2
    assert value(found, "external_streaming_cluster_jobs", state="failed") == 3
    assert value(found, "external_streaming_cluster_workers") == 1
    paths = [path for method, path, _ in fake.requests]
    assert sorted(paths) == sorted(
        [
            "/seatunnel/overview",
            "/seatunnel/running-jobs",
            "/seatunnel/finished-jobs/FAILED",
            "/seatunnel/finished-jobs/CANCELED",
            "/seatunnel/finished-jobs/SAVEPOINT_DONE",
        ]
    )


async def test_a_job_that_left_the_running_list_is_followed_by_id() -> None:
    fake = FakeSeaTunnel()
    job = fake.add("miso-lmp-to-kafka", "RUNNING")
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        client = SeaTunnelClient(session, SeaTunnelSettings(enabled=True, base_url=url))
        collector = SeaTunnelCollector(client, CATALOG)
        first = samples(await collector.collect(Deadline.in_seconds(5)))
        assert status_of(first, "miso-lmp-to-kafka") == "RUNNING"
        seen = value(
            first,
            "external_streaming_job_last_running_timestamp",
            provider="MISO",
            streaming_job="miso-lmp-to-kafka",
        )
        # Stopped outside the finished lists' view (expired history): job-info still knows.
        job.status = "FINISHED"
        fake.requests.clear()
        second = samples(await collector.collect(Deadline.in_seconds(5)))
    assert status_of(second, "miso-lmp-to-kafka") == "FINISHED"
    assert ("GET", f"/job-info/{job.job_id}", "") in fake.requests
    # Last seen running stays when the job stops.
    assert (
        value(
            second,
            "external_streaming_job_last_running_timestamp",
            provider="MISO",
            streaming_job="miso-lmp-to-kafka",
        )
        == seen
    )


async def test_unreachable_or_refusing_engine_marks_the_collector_down() -> None:
    fake = FakeSeaTunnel(basic_auth=("feedguard", "s3cret"))
    fake.add("isone-lmp-to-kafka")
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        wrong = SeaTunnelSettings(enabled=True, base_url=url, username="feedguard", password="x")
        with structlog.testing.capture_logs() as logs:
            families = await gather(
                [SeaTunnelCollector(SeaTunnelClient(session, wrong), CATALOG)],
                Deadline.in_seconds(5),
            )
        (failed,) = [e for e in logs if e["event"] == "collector failed"]
        assert failed["error"].startswith("SeaTunnelRefused: HTTP 401")
        text = render(families).decode()
        assert 'external_exporter_collector_up{collector="seatunnel"} 0.0' in text
        assert "external_streaming_job_status" not in text
        right = wrong.model_copy(update={"password": "s3cret"})
        families = await gather(
            [SeaTunnelCollector(SeaTunnelClient(session, right), CATALOG)], Deadline.in_seconds(5)
        )
        assert (
            'external_exporter_collector_up{collector="seatunnel"} 1.0' in render(families).decode()
        )
    closed = SeaTunnelSettings(enabled=True, base_url=url)  # the server has stopped
    async with aiohttp.ClientSession() as session:
        with pytest.raises(SeaTunnelUnavailable):
            await SeaTunnelClient(session, closed).overview()


async def test_client_errors_carry_the_engines_message() -> None:
    fake = FakeSeaTunnel()
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        client = SeaTunnelClient(session, SeaTunnelSettings(base_url=url))
        assert await client.job_info("12345") is None  # unknown id: {"jobId": ...} only
        with pytest.raises(SeaTunnelRefused, match="For input string") as refused:
            await client.job_info("not-a-number")
        assert refused.value.status == 400
        with pytest.raises(SeaTunnelUnavailable, match="not running, save point failed"):
            await client.stop_job("12345", savepoint=True)
        with pytest.raises(SeaTunnelRefused, match="provide jobId when start with save point"):
            await client.submit_job("env {}", config_format="hocon", start_with_savepoint=True)
        fake.fail_next.append(503)
        with pytest.raises(SeaTunnelUnavailable) as unavailable:
            await client.running_jobs()
        assert unavailable.value.status == 503
        wrong_path = SeaTunnelClient(session, SeaTunnelSettings(base_url=url, context_path="/nope"))
        with pytest.raises(SeaTunnelRefused) as missing:
            await wrong_path.overview()
        assert missing.value.status == 404


async def test_stop_with_savepoint_and_resubmit_round_trip() -> None:
    fake = FakeSeaTunnel(settle_reads=2)
    job = fake.add("isone-lmp-to-kafka")
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        client = SeaTunnelClient(session, SeaTunnelSettings(base_url=url))
        await client.stop_job(job.job_id, savepoint=True)
        states = [(await client.job_info(job.job_id)) for _ in range(2)]
        assert [s.status for s in states if s] == ["DOING_SAVEPOINT", "SAVEPOINT_DONE"]
        new_id = await client.submit_job(
            'env { job.name = "isone-lmp-to-kafka"\n job.mode = "STREAMING" }',
            config_format="hocon",
            job_id=job.job_id,
            job_name="isone-lmp-to-kafka",
            start_with_savepoint=True,
        )
    assert new_id == job.job_id
    assert fake.jobs[job.job_id].restored_from_savepoint
    assert fake.jobs[job.job_id].status == "RUNNING"
    _query, body = fake.posts("/stop-job")[0]
    assert body == f'{{"jobId": {job.job_id}, "isStopWithSavePoint": true}}'


async def test_exporter_scrapes_seatunnel_when_enabled(aiohttp_client, redis_url: str) -> None:
    fake = FakeSeaTunnel(context_path="/st")
    fake.add("isone-lmp-to-kafka")
    async with fake.serve() as url:
        config = load_config(
            None,
            {
                "FEEDGUARD_REDIS_URL": redis_url,
                "FEEDGUARD_PROBES_ENABLED": "false",
                "FEEDGUARD_SEATUNNEL_ENABLED": "true",
                "FEEDGUARD_SEATUNNEL_BASE_URL": url,
                "FEEDGUARD_SEATUNNEL_CONTEXT_PATH": "/st",
                "FEEDGUARD_CATALOG_FILE": str(REPO / "config" / "external_providers.yml"),
            },
        )
        client: TestClient = await aiohttp_client(create_app(config))
        text = await (await client.get("/metrics")).text()
    assert 'external_exporter_collector_up{collector="seatunnel"} 1.0' in text
    assert (
        'external_streaming_job_status{provider="ISO-NE",status="RUNNING",'
        'streaming_job="isone-lmp-to-kafka"} 1.0'
    ) in text
