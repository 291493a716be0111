"""The executor honours ``Retry-After`` (RFC 9110 10.2.3) on a 429 or 503: the header's
parser and the wait's cap, then each action client through its local stand-in (runtime
config, Kubernetes API, Airflow 2): refused once with ``Retry-After``, the step succeeds on
its second attempt, and the stand-in saw that attempt no sooner than it asked.  The
SeaTunnel client is shown to hand its answer's Retry-After to the step's error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowSettings
from feedguard.core.retry_after import CEILING, parse_retry_after, retry_after_of
from feedguard.core.seatunnel import SeaTunnelClient, SeaTunnelError, SeaTunnelSettings
from feedguard.responder.actions.kube import ConfigMapClient
from feedguard.responder.actions.pause_dags import PauseDags
from feedguard.responder.actions.pause_streaming import seatunnel_error
from feedguard.responder.actions.read_cache import ReadCache
from feedguard.responder.actions.runtime_config import RuntimeConfigClient
from feedguard.responder.actions.settings import KubernetesSettings, RuntimeConfigSettings
from feedguard.responder.actions.throttle_api import ThrottleApi
from feedguard.responder.config import ExecutorSettings
from feedguard.responder.plugins import Action, ActionError
from feedguard.responder.steps import retry_delay

from .conftest import make_catalog
from .support.action_context import context
from .support.fake_airflow2 import FakeAirflow2
from .support.fake_http import Arrival, serve_app
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.fake_seatunnel import FakeSeaTunnel
from .support.responder import FakeClock, Responder, alert, notification, responder_config
from .support.responder import start_responder as start

NOW = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)
FEATURE = "external_read_cache"
NS, CM, KEY = "aurum-dev", "aurum-api-config", "AURUM_API_RATE_LIMIT_RPS"
DAG = "external_data_ingest"


# --- the header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),  # not RFC (1*DIGIT), but a plain reading of it
        ("Tue, 01 Dec 2026 08:00:30 GMT", 30.0),  # IMF-fixdate
        ("Tuesday, 01-Dec-26 08:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Tue Dec  1 08:00:05 2026", 5.0),  # asctime form
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # already past: no wait, not negative
    ],
)
def test_delay_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "-1", "-0.5", "1e3", "0x10", "\u0663", "Mon, 99 Foo 2026 00:00:00 GMT"],
)
def test_garbage_and_negative_values_are_none_not_an_error(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_a_huge_value_comes_back_for_the_caller_to_cap_but_finite() -> None:
    assert parse_retry_after("86400") == 86400.0
    # Past float's range (and int's digit limit): no error, no inf (a log needs a number).
    assert parse_retry_after("9" * 5000) == CEILING
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) == CEILING


def test_only_a_429_or_503_asks_for_a_wait() -> None:
    assert retry_after_of(429, {"Retry-After": "2"}) == 2.0
    assert retry_after_of(503, {"retry-after": ["3"]}) == 3.0  # slack_sdk: lists, any case
    assert retry_after_of(500, {"Retry-After": "2"}) is None
    assert retry_after_of(301, {"Retry-After": "2"}) is None
    assert retry_after_of(429, {}) is None
    assert retry_after_of(429, None) is None


def executor(**fields: Any) -> ExecutorSettings:
    return ExecutorSettings(backoff_initial_seconds=0.5, backoff_factor=2, **fields)


def test_the_wait_is_the_longer_of_backoff_and_retry_after_up_to_the_cap() -> None:
    settings = executor(max_retry_after_seconds=60)
    assert retry_delay(settings, 1, None) == 0.5
    assert retry_delay(settings, 2, None) == 1.0
    assert retry_delay(settings, 1, 5.0) == 5.0  # asked for longer than the backoff
    assert retry_delay(settings, 2, 0.2) == 1.0  # asked for less: the backoff stands
    assert retry_delay(settings, 1, 3600.0) == 60.0  # an hour: no more than the cap
    assert retry_delay(settings, 1, CEILING) == 60.0
    assert retry_delay(executor(max_retry_after_seconds=0), 1, 30.0) == 0.5  # 0: ignored


def test_the_cap_is_validated_like_the_other_executor_settings() -> None:
    assert ExecutorSettings().max_retry_after_seconds == 60.0
    with pytest.raises(ValueError, match="max_retry_after_seconds"):
        ExecutorSettings(max_retry_after_seconds=-1)


# --- through the executor, against the stand-ins ----------------------------------------


@asynccontextmanager
async def responder(
    tmp_path: Path,
    action: Action,
    params: Mapping[str, Any] | None = None,
    **executor: Any,
) -> AsyncIterator[Responder]:
    """A responder whose one playbook runs ``action``; backoff 0.01 s, so the
    Retry-After is what makes any longer wait."""
    step = {"action": action.name, **({"params": dict(params)} if params else {})}
    playbook = {"name": "down", "matchers": ['alertname="ExternalProviderDown"']}
    config = responder_config(
        tmp_path,
        catalog=make_catalog({"ISO-NE": {}}),
        playbooks=[{**playbook, "firing": [step]}],
        executor={"backoff_initial_seconds": 0.01, **executor},
    )
    async with start(config, clock=FakeClock(), actions={action.name: action}) as r:
        yield r


async def run_step(r: Responder) -> dict[str, Any]:
    """Fire the alert, let the step run; its one record."""
    await r.post(notification([alert("ISO-NE")]))
    await r.settle()
    (record,) = (await r.incident("ISO-NE"))["actions"]
    return dict(record)


def gap(arrivals: Sequence[Arrival], path_part: str) -> float:
    """Seconds between the first and second request the stand-in saw on that path."""
    first, second = [a for a in arrivals if path_part in a.path][:2]
    return second.at - first.at


def read_cache(session: aiohttp.ClientSession, url: str) -> ReadCache:
    settings = RuntimeConfigSettings(base_url=url, token="rc-token", timeout_seconds=5)
    return ReadCache(RuntimeConfigClient(session, url, "rc-token", 5), settings)


async def test_runtime_config_429_waits_out_retry_after(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fake = FakeRuntimeConfig.with_features([FEATURE], token="rc-token")
    fake.fail_next.append(429)
    fake.retry_after = "1"
    async with fake.serve() as url, responder(tmp_path, read_cache(session, url)) as r:
        with capture_logs() as logs:
            record = await run_step(r)
    assert (record["result"], record["detail"]["attempts"]) == ("success", 2)
    assert [s.method for s in fake.requests] == ["GET", "GET", "POST"]
    assert gap(fake.arrivals, FEATURE) >= 1.0
    (failed,) = [e for e in logs if e["event"] == "action attempt failed"]
    assert (failed["retry_after"], failed["delay_seconds"]) == (1.0, 1.0)
    assert "HTTP 429" in failed["error"]


async def test_429s_do_not_open_the_breaker_but_a_503_still_counts(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A 429 is the system pacing us: with a breaker that opens after two failures,
    three 429s in a row still end in success on the fourth attempt (counted as
    failures, the third attempt would meet an open breaker for 300 s); two 503s open it."""
    fake = FakeRuntimeConfig.with_features([FEATURE], token="rc-token")
    fake.fail_next.extend([429, 429, 429])
    fake.retry_after = "0"
    options = {"attempts": 4, "circuit_failure_threshold": 2, "auto_retries": 0}
    async with fake.serve() as url, responder(tmp_path, read_cache(session, url), **options) as r:
        record = await run_step(r)
        assert (record["result"], record["detail"]["attempts"]) == ("success", 4)
        assert 'feedguard_responder_circuit_breaker_open{circuit="runtime-config"} 0.0' in (
            await r.metrics()
        )

    fake = FakeRuntimeConfig.with_features([FEATURE], token="rc-token")
    fake.fail_next.extend([503, 503])
    async with (
        fake.serve() as url,
        responder(tmp_path / "503", read_cache(session, url), **options) as r,
    ):
        record = await run_step(r)
        assert record["result"] == "failure"
        assert "circuit 'runtime-config' is open after 2 failures" in record["error"]
        assert 'feedguard_responder_circuit_breaker_open{circuit="runtime-config"} 1.0' in (
            await r.metrics()
        )


async def test_a_retry_after_past_the_cap_waits_only_the_cap(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # A 503 asking for a day, as an HTTP-date: the step waits the cap (0.3 s), not a day.
    fake = FakeRuntimeConfig.with_features([FEATURE], token="rc-token")
    fake.fail_next.append(503)
    fake.retry_after = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    async with (
        fake.serve() as url,
        responder(tmp_path, read_cache(session, url), max_retry_after_seconds=0.3) as r,
    ):
        with capture_logs() as logs:
            record = await run_step(r)
    assert (record["result"], record["detail"]["attempts"]) == ("success", 2)
    assert gap(fake.arrivals, FEATURE) >= 0.3
    (failed,) = [e for e in logs if e["event"] == "action attempt failed"]
    assert failed["retry_after"] > 86_000
    assert failed["delay_seconds"] == 0.3


def throttle(url: str) -> ThrottleApi:
    settings = KubernetesSettings(host=url, token="good-token", timeout_seconds=5)
    return ThrottleApi(ConfigMapClient(settings), settings)


@pytest.fixture
def kubernetes() -> FakeKubernetes:
    fake = FakeKubernetes()
    fake.grant("good-token", names=[(NS, CM)])
    fake.put(NS, CM, {KEY: "200"})
    return fake


async def test_kubernetes_429_waits_out_retry_after(
    kubernetes: FakeKubernetes, tmp_path: Path
) -> None:
    kubernetes.fail_next.append(429)
    kubernetes.retry_after = 1
    async with kubernetes.serve() as url, responder(tmp_path, throttle(url)) as r:
        record = await run_step(r)
    assert (record["result"], record["detail"]["attempts"]) == ("success", 2)
    assert kubernetes.data(NS, CM) == {KEY: "50"}
    assert gap(kubernetes.arrivals, f"/configmaps/{CM}") >= 1.0


@pytest.mark.parametrize("header", [True, False])
async def test_kubernetes_429_names_its_wait_in_the_header_or_the_status_details(
    kubernetes: FakeKubernetes, header: bool
) -> None:
    # APF sends both; details.retryAfterSeconds alone (the documented TooManyRequests
    # detail) is read as well.
    kubernetes.fail_next.append(429)
    kubernetes.retry_after, kubernetes.retry_after_header = 2, header
    async with kubernetes.serve() as url:
        action = throttle(url)
        ctx = context()
        (target,) = action.targets(ctx)
        with pytest.raises(ActionError, match="TooManyRequests") as raised:
            await action.apply(ctx, target)
    error = raised.value
    assert (error.status, error.retryable, error.retry_after) == (429, True, 2.0)


async def test_airflow_429_waits_out_retry_after(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fake = FakeAirflow2(username="admin", password="secret")
    fake.add_dag(DAG)
    fake.fail_next.append(429)
    fake.retry_after = "1"
    async with serve_app(fake.app()) as url:
        settings = AirflowSettings(base_url=url, version="2", username="admin", password="secret")
        action = PauseDags(AirflowClient(session, settings))
        async with responder(tmp_path, action, params={"dags": [DAG]}) as r:
            record = await run_step(r)
    assert (record["result"], record["detail"]["attempts"]) == ("success", 2)
    assert fake.dags[DAG].is_paused
    assert gap(fake.arrivals, f"/dags/{DAG}") >= 1.0


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (503, True), (400, False)])
async def test_seatunnel_answers_carry_their_retry_after_to_the_step(
    session: aiohttp.ClientSession, status: int, retryable: bool
) -> None:
    fake = FakeSeaTunnel()
    fake.fail_next.append(status)
    fake.retry_after = "3"
    async with fake.serve() as url:
        client = SeaTunnelClient(session, SeaTunnelSettings(base_url=url))
        with pytest.raises(SeaTunnelError) as raised:
            await client.running_jobs()
    error = seatunnel_error(raised.value, "pause streaming job")
    # A 400 has no Retry-After to honour (RFC 9110 pairs it with 429 and 503).
    wanted = 3.0 if status != 400 else None
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, wanted)
