"""read_cache against a local stand-in of the runtime-config admin API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from feedguard.responder.actions.read_cache import ReadCache
from feedguard.responder.actions.runtime_config import RuntimeConfigClient
from feedguard.responder.actions.settings import RuntimeConfigSettings
from feedguard.responder.plugins import ActionError

from .conftest import make_catalog
from .support.action_context import context
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.responder import (
    FakeClock,
    Responder,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)
from .support.services import free_port

FEATURE = "external_read_cache"
ON = {"enabled": True, "configuration": {"ttl_seconds": 900}}


@pytest.fixture
def fake() -> FakeRuntimeConfig:
    return FakeRuntimeConfig.with_features([FEATURE], token="rc-token")


@pytest.fixture
async def url(fake: FakeRuntimeConfig) -> AsyncIterator[str]:
    async with fake.serve() as url:
        yield url


def make_action(
    session: aiohttp.ClientSession, url: str | None, token: str = "rc-token"
) -> ReadCache:
    settings = RuntimeConfigSettings(base_url=url, token=token, timeout_seconds=2)
    return ReadCache(RuntimeConfigClient(session, url, token, 2), settings)


async def test_switch_on_then_back_off(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    assert target.resource == f"runtime-config:feature:{FEATURE}"

    outcome = await action.apply(ctx, target)
    assert outcome.changed is True
    assert outcome.previous == {"enabled": False, "configuration": {}}
    assert fake.posts(FEATURE) == [ON]
    assert all(r.authorization == "Bearer rc-token" for r in fake.requests)

    again = await action.apply(ctx, target)
    assert (again.changed, fake.posts(FEATURE)) == (False, [ON])

    back = await action.revert(ctx, target, outcome.previous)
    assert back.changed is True
    # The runbook's 5.5 body, plus the empty configuration the flag had: the
    # ttl this responder set does not stay behind.
    assert fake.posts(FEATURE)[-1] == {"enabled": False, "configuration": {}}
    assert fake.features[FEATURE] == {"enabled": False, "configuration": {}}
    twice = await action.revert(ctx, target, outcome.previous)
    assert (twice.changed, len(fake.posts(FEATURE))) == (False, 2)


async def test_cache_already_on_stays_on(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    fake.features[FEATURE] = {"enabled": True, "configuration": {"ttl_seconds": 900}}
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert outcome.changed is False
    await action.revert(ctx, target, outcome.previous)
    assert fake.features[FEATURE]["enabled"] is True
    assert fake.posts() == []


async def test_previous_configuration_is_restored(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    fake.features[FEATURE] = {"enabled": True, "configuration": {"ttl_seconds": 60}}
    action = make_action(session, url)
    ctx = context(params={"ttl_seconds": 300})
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert fake.posts() == [{"enabled": True, "configuration": {"ttl_seconds": 300}}]
    await action.revert(ctx, target, outcome.previous)
    assert fake.features[FEATURE] == {"enabled": True, "configuration": {"ttl_seconds": 60}}


@pytest.mark.parametrize("refusal", [405, 501])
async def test_api_without_get_assumes_off(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession, refusal: int
) -> None:
    fake.serve_get, fake.get_refusal = False, refusal
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert outcome.previous == {"enabled": False}
    assert "assumed off" in str(outcome.detail["note"])
    await action.revert(ctx, target, outcome.previous)
    assert fake.posts() == [ON, {"enabled": False}]


@pytest.mark.parametrize(
    ("token", "features", "status"),
    [("wrong", [FEATURE], 401), ("rc-token", ["other"], 404)],
)
async def test_client_errors_are_final(
    url: str,
    fake: FakeRuntimeConfig,
    session: aiohttp.ClientSession,
    token: str,
    features: list[str],
    status: int,
) -> None:
    fake.features = {name: {"enabled": False, "configuration": {}} for name in features}
    fake.serve_get = False  # the POST itself must be refused
    action = make_action(session, url, token=token)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (status, False)
    assert f"feature {FEATURE}" in str(raised.value)
    assert f"HTTP {status}" in str(raised.value)


async def test_refused_body_is_final(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.revert(ctx, target, {"enabled": "no"})
    assert raised.value.retryable is False
    assert fake.posts() == []
    client = RuntimeConfigClient(session, url, "rc-token", 2)
    with pytest.raises(ActionError) as raised:
        await client.set(FEATURE, {"enabled": "yes"})
    assert (raised.value.status, raised.value.retryable) == (422, False)
    assert "enabled: must be true or false" in str(raised.value)


# 429 and 408 pass by themselves too (on the GET they used to fail the step for good:
# only a 5xx was transient there).
@pytest.mark.parametrize("status", [503, 429, 408])
async def test_server_errors_and_no_server_are_retryable(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession, status: int
) -> None:
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    fake.fail_next.append(status)  # the GET's answer
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (status, True)
    assert fake.posts() == []
    down = make_action(session, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ActionError) as raised:
        await down.apply(ctx, target)
    assert raised.value.retryable is True


async def test_unset_base_url_is_a_clear_final_error(session: aiohttp.ClientSession) -> None:
    action = make_action(session, None)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError, match="base_url is not set") as raised:
        await action.apply(ctx, target)
    assert raised.value.retryable is False
    with pytest.raises(ActionError, match="positive integer"):
        action.targets(context(params={"ttl_seconds": 0}))


async def test_retry_after_a_timed_out_post_keeps_the_state_from_before(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    settings = RuntimeConfigSettings(base_url=url, token="rc-token", timeout_seconds=0.3)
    action = ReadCache(RuntimeConfigClient(session, url, "rc-token", 0.3), settings)
    ctx = context()
    (target,) = action.targets(ctx)
    # The API switches the cache on but its answer never arrives in time.
    fake.hold_answers = asyncio.Event()
    with pytest.raises(ActionError, match="timed out") as raised:
        await action.apply(ctx, target)
    assert raised.value.retryable is True
    assert fake.features[FEATURE]["enabled"] is True
    fake.hold_answers.set()
    fake.hold_answers = None
    retry = await action.apply(ctx, target)
    assert retry.previous == {"enabled": False, "configuration": {}}
    assert retry.changed is False
    # Another replica (no memory of this process) taking over reads the intent, not "on".
    survivor = ReadCache(RuntimeConfigClient(session, url, "rc-token", 0.3), settings)
    taken_over = await survivor.apply(ctx, target)
    assert taken_over.previous == {"enabled": False, "configuration": {}}
    assert len(fake.posts(FEATURE)) == 1
    # Another incident meeting the cache on was not the one that switched it.
    other = await action.apply(context(incident_id="inc-2"), target)
    assert other.previous == {"enabled": True, "configuration": {"ttl_seconds": 900}}


async def test_an_operators_later_change_is_left_alone_and_said_so(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    # While the incident is open an operator shortens the TTL by hand.
    fake.features[FEATURE] = {"enabled": True, "configuration": {"ttl_seconds": 60}}
    back = await action.revert(ctx, target, outcome.previous)
    assert back.left_alone == f"feature {FEATURE} was changed by someone else since; kept"
    assert back.changed is False
    assert fake.posts(FEATURE) == [ON]  # nothing posted over the operator's choice
    assert fake.features[FEATURE] == {"enabled": True, "configuration": {"ttl_seconds": 60}}


@contextlib.asynccontextmanager
async def cache_responder(
    tmp_path: Path, session: aiohttp.ClientSession, url: str
) -> AsyncIterator[Responder]:
    """A responder whose one playbook switches the cache on and, on recovery, back."""
    down = {"name": "provider-down", "matchers": ['alertname="ExternalProviderDown"']}
    steps = {"firing": [{"action": "read_cache"}], "resolved": [{"revert": "read_cache"}]}
    config = responder_config(
        tmp_path, catalog=make_catalog({"ISO-NE": {}}), playbooks=[{**down, **steps}]
    )
    actions = {"read_cache": make_action(session, url)}
    async with start_responder(config, clock=FakeClock(), actions=actions) as r:
        yield r


async def test_a_get_answered_501_is_state_unknown_through_the_executor(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # An API that does not implement reads: 501 Not Implemented is its final word on
    # the GET, so the state is unknown (assumed off), once, not a server error retried.
    fake.serve_get, fake.get_refusal = False, 501
    async with cache_responder(tmp_path, session, url) as r:
        firing = alert("ISO-NE")
        await r.post(notification([firing]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        (applied,) = incident["actions"]
        assert (applied["result"], applied["detail"]["attempts"]) == ("success", 1)
        assert applied["previous"] == {"enabled": False}
        assert applied["detail"]["note"] == "previous state unknown (GET not served); assumed off"
        assert fake.features[FEATURE] == ON
        assert [r.method for r in fake.requests] == ["GET", "POST"]
        # Recovery: the previous state was unknown, so the runbook's 5.5 body.
        await r.post(notification([resolved(firing)]))
        await r.tick()
        incident = await r.incident("ISO-NE")
    assert incident["state"] == "resolved", incident["timeline"]
    undo = incident["actions"][-1]
    assert (undo["phase"], undo["result"]) == ("recovery", "success")
    assert fake.posts(FEATURE) == [ON, {"enabled": False}]
    assert fake.features[FEATURE] == {"enabled": False, "configuration": {}}
    assert [r.method for r in fake.requests] == ["GET", "POST", "GET", "POST"]


async def test_a_post_answered_501_is_final_not_retried(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # The GET is answered 405 (before any injected failure); the POST, 501.
    fake.serve_get = False
    fake.fail_next.append(501)
    async with cache_responder(tmp_path, session, url) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
    (failed,) = incident["actions"]
    assert failed["result"] == "failure"
    assert "HTTP 501" in failed["error"]
    # One attempt, and not transient: no automatic retry will come either.
    assert (failed["detail"]["attempts"], failed["detail"]["transient"]) == (1, False)
    assert [r.method for r in fake.requests] == ["GET", "POST"]
    assert incident["state"] == "needs_attention"


async def test_a_get_answered_429_is_retried_through_the_executor(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # The second attempt reads the state and switches the cache on.
    fake.fail_next.append(429)
    async with cache_responder(tmp_path, session, url) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
    (applied,) = incident["actions"]
    assert (applied["result"], applied["detail"]["attempts"]) == ("success", 2)
    assert fake.features[FEATURE] == ON


async def test_a_state_the_client_cannot_read_is_final(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    # 200 with a state that is not one: asking again gets the same answer.
    fake.features[FEATURE] = {"enabled": "yes", "configuration": {}}
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError, match="unexpected answer") as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (200, False)
    assert fake.posts() == []
