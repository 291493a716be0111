"""reduce_batch_size (runbook 4) against a local stand-in of the runtime-config API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from feedguard.responder.actions.reduce_batch_size import ReduceBatchSize
from feedguard.responder.actions.runtime_config import RuntimeConfigClient
from feedguard.responder.actions.settings import RuntimeConfigSettings
from feedguard.responder.plugins import ActionError

from .conftest import make_catalog
from .support.action_context import context
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.responder import (
    FakeClock,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)

FEATURE = "external_ingest"


@pytest.fixture
def fake() -> FakeRuntimeConfig:
    fake = FakeRuntimeConfig(token="rc-token")
    fake.features[FEATURE] = {"enabled": True, "configuration": {"batch_size": 2000, "workers": 4}}
    return fake


@pytest.fixture
async def url(fake: FakeRuntimeConfig) -> AsyncIterator[str]:
    async with fake.serve() as url:
        yield url


def make_action(session: aiohttp.ClientSession, url: str) -> ReduceBatchSize:
    settings = RuntimeConfigSettings(base_url=url, token="rc-token", timeout_seconds=2)
    return ReduceBatchSize(RuntimeConfigClient(session, url, "rc-token", 2), settings)


async def test_sets_500_then_restores_the_previous_value_exactly(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    assert target.description == "set external_ingest.batch_size to 500"
    assert target.resource == "runtime-config:value:external_ingest.batch_size"
    outcome = await action.apply(ctx, target)
    assert (outcome.changed, outcome.previous) == (True, {"present": True, "value": 2000})
    # Other keys and the enabled switch stay as they were.
    assert fake.features[FEATURE] == {
        "enabled": True,
        "configuration": {"batch_size": 500, "workers": 4},
    }
    again = await action.apply(ctx, target)
    assert (again.changed, again.previous, len(fake.posts())) == (False, outcome.previous, 1)
    # Meanwhile someone adds a key: it stays; only batch_size goes back.
    fake.features[FEATURE]["configuration"]["region"] = "us"
    back = await action.revert(ctx, target, outcome.previous)
    assert back.changed is True
    assert fake.features[FEATURE]["configuration"] == {
        "batch_size": 2000,
        "workers": 4,
        "region": "us",
    }
    twice = await action.revert(ctx, target, outcome.previous)
    assert (twice.changed, len(fake.posts())) == (False, 2)


async def test_a_value_that_was_absent_is_removed_again(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    fake.features[FEATURE] = {"enabled": False, "configuration": {}}
    action = make_action(session, url)
    ctx = context(params={"batch_size": 250})
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert outcome.previous == {"present": False}
    assert fake.features[FEATURE] == {"enabled": False, "configuration": {"batch_size": 250}}
    await action.revert(ctx, target, outcome.previous)
    assert fake.features[FEATURE] == {"enabled": False, "configuration": {}}


async def test_an_operators_newer_value_is_left_alone(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    fake.features[FEATURE]["configuration"]["batch_size"] = 100  # an operator's choice
    back = await action.revert(ctx, target, outcome.previous)
    assert back.changed is False
    assert back.left_alone == "external_ingest.batch_size was changed by someone else since; kept"
    assert fake.features[FEATURE]["configuration"]["batch_size"] == 100


@pytest.mark.parametrize("refusal", [405, 501])
async def test_an_unreadable_feature_is_refused_before_any_change(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession, refusal: int
) -> None:
    # GET answers 405 or 501 (Not Implemented: final, not a passing server error),
    # so the old value cannot be known.
    fake.serve_get, fake.get_refusal = False, refusal
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError, match="cannot read the current value") as caught:
        await action.apply(ctx, target)
    assert (caught.value.status, caught.value.retryable) == (refusal, False)
    assert fake.posts() == []


async def test_a_rate_limited_read_is_transient(
    fake: FakeRuntimeConfig, url: str, session: aiohttp.ClientSession
) -> None:
    # 429 on the GET: another attempt may read it (before, only a 5xx was transient).
    fake.fail_next.append(429)
    action = make_action(session, url)
    ctx = context()
    (target,) = action.targets(ctx)
    # The client raises a 429 itself, so the error carries the answer's Retry-After.
    with pytest.raises(ActionError, match="GET feature external_ingest: HTTP 429") as caught:
        await action.apply(ctx, target)
    assert (caught.value.status, caught.value.retryable) == (429, True)
    assert fake.posts() == []
    outcome = await action.apply(ctx, target)
    assert outcome.changed is True


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"batch_size": True}, "batch_size must be a positive integer, got True"),
        ({"size": 5}, "unknown parameter(s) ['size']"),
    ],
)
def test_bad_params_are_named(params: dict[str, object], message: str) -> None:
    action = ReduceBatchSize(None, RuntimeConfigSettings())  # type: ignore[arg-type]  # targets() makes no call
    with pytest.raises(ActionError) as caught:
        action.targets(context(params=params))
    assert message in str(caught.value)


PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [{"action": "reduce_batch_size"}],
        "resolved": [{"revert": "all"}],
    }
]


async def test_through_the_webhook_two_incidents_share_it_and_recovery_restores_it(
    tmp_path: Path, fake: FakeRuntimeConfig, url: str
) -> None:
    catalog = make_catalog({"ISO-NE": {}, "MISO": {}})
    config = responder_config(
        tmp_path,
        catalog=catalog,
        playbooks=PLAYBOOKS,
        actions={"runtime_config": {"base_url": url, "token": "rc-token"}},
    )
    async with start_responder(config, clock=FakeClock()) as r:
        iso, miso = alert("ISO-NE"), alert("MISO")
        await r.post(notification([iso]))
        await r.post(notification([miso]))
        await r.settle()
        assert fake.features[FEATURE]["configuration"]["batch_size"] == 500
        assert len(fake.posts()) == 1  # the second incident only adds its claim
        first = (await r.incident("ISO-NE"))["actions"][0]
        assert first["previous"] == {"present": True, "value": 2000}
        assert first["result"] == "success"
        await r.post(notification([resolved(iso)]))
        await r.tick()
        # MISO still holds it: not restored yet.
        assert fake.features[FEATURE]["configuration"]["batch_size"] == 500
        await r.post(notification([resolved(miso)]))
        await r.tick()
        assert (await r.incident("MISO"))["state"] == "resolved"
        assert fake.features[FEATURE]["configuration"] == {"batch_size": 2000, "workers": 4}


async def test_dry_run_plans_it_and_changes_nothing(
    tmp_path: Path, fake: FakeRuntimeConfig, url: str
) -> None:
    config = responder_config(
        tmp_path,
        catalog=make_catalog({"ISO-NE": {}}),
        playbooks=PLAYBOOKS,
        actions={"runtime_config": {"base_url": url, "token": "rc-token"}},
        dry_run=True,
    )
    async with start_responder(config, clock=FakeClock()) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        (record,) = (await r.incident("ISO-NE"))["actions"]
        assert (record["result"], record["target"]) == (
            "dry_run",
            "set external_ingest.batch_size to 500",
        )
    assert fake.posts() == []
    assert fake.features[FEATURE]["configuration"]["batch_size"] == 2000
