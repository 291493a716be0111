"""A short outage of a downstream system heals without a human: when the breaker lets
a call through again (half-open), a step that failed only transiently is retried
automatically, a bounded number of times, each retry on the timeline."""

from __future__ import annotations

from pathlib import Path

from .conftest import make_catalog
from .support.responder import (
    CountingAction,
    FakeClock,
    alert,
    notification,
    responder_config,
    start_responder,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})
PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [{"action": "throttle_api"}],
        "resolved": [{"revert": "all"}],
    }
]


def setup(tmp_path: Path, fail_times: int, retryable: bool = True) -> tuple[object, CountingAction]:
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        playbooks=PLAYBOOKS,
        executor={
            "attempts": 1,
            "circuit_failure_threshold": 1,
            "circuit_reset_seconds": 300,
            "auto_retries": 3,
        },
    )
    return config, CountingAction("throttle_api", fail_times=fail_times, retryable=retryable)


def retries(incident: dict[str, object]) -> list[str]:
    return [
        str(e["event"])
        for e in incident["timeline"]  # type: ignore[attr-defined]
        if str(e["event"]).startswith("automatic retry")
    ]


async def test_breaker_half_opens_and_the_step_finishes_without_a_human(tmp_path: Path) -> None:
    config, throttle = setup(tmp_path, fail_times=100)
    clock = FakeClock()
    async with start_responder(config, clock=clock, actions={"throttle_api": throttle}) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        assert (await r.incident("ISO-NE"))["state"] == "needs_attention"
        assert throttle.attempts == 1

        clock.advance(60)  # the breaker is still open: nothing is tried
        await r.tick()
        assert throttle.attempts == 1
        assert retries(await r.incident("ISO-NE")) == []

        throttle.fail_times = 0  # the system is back
        clock.advance(241)  # past circuit_reset_seconds: half-open
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "stabilised"
        assert throttle.applied == [(incident["id"], "throttle_api #0")]
        assert retries(incident) == ["automatic retry 1/3 of step firing:provider-down:0"]
        # Every attempt is on the timeline: the failure, the automatic retry, the success.
        steps = [
            e["event"]
            for e in incident["timeline"]
            if e["event"] in ("step failed", "step applied") or e["event"].startswith("automatic")
        ]
        assert steps == [
            "step failed",
            "automatic retry 1/3 of step firing:provider-down:0",
            "step applied",
        ]
        assert 'circuit_breaker_open{circuit="test"} 0.0' in await r.metrics()


async def test_automatic_retries_are_bounded(tmp_path: Path) -> None:
    config, throttle = setup(tmp_path, fail_times=100)
    clock = FakeClock()
    async with start_responder(config, clock=clock, actions={"throttle_api": throttle}) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        for _ in range(5):
            clock.advance(301)
            await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "needs_attention"
        assert throttle.attempts == 4  # the first call and 3 automatic retries
        assert len(retries(incident)) == 3


async def test_a_final_refusal_is_not_retried(tmp_path: Path) -> None:
    config, throttle = setup(tmp_path, fail_times=100, retryable=False)
    clock = FakeClock()
    async with start_responder(config, clock=clock, actions={"throttle_api": throttle}) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        clock.advance(301)
        await r.tick()
        incident = await r.incident("ISO-NE")
        assert incident["state"] == "needs_attention"
        assert throttle.attempts == 1
        assert retries(incident) == []
