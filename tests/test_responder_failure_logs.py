"""Step failures, circuit breaker transitions and needs_attention reach the log at
warning/error with the incident id (they were only in the incidents API)."""

from __future__ import annotations

from pathlib import Path

import structlog

from .conftest import make_catalog
from .support.responder import (
    DEFAULT_PLAYBOOKS,
    CountingAction,
    FakeClock,
    alert,
    notification,
    resolved,
    responder_config,
    start_responder,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}})


def events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e["event"] == name]


async def test_failures_and_breaker_transitions_are_logged(tmp_path: Path) -> None:
    clock = FakeClock()
    playbooks = [{**DEFAULT_PLAYBOOKS[0], "firing": [{"action": "throttle_api"}]}]
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        playbooks=playbooks,
        # No automatic retry here: the logs of each failure are what is checked.
        executor={"attempts": 3, "circuit_failure_threshold": 3, "auto_retries": 0},
    )
    throttle = CountingAction("throttle_api", fail_times=3)
    actions = {
        "throttle_api": throttle,
        "trigger_backfill": CountingAction(
            "trigger_backfill", reversible=False, fail_times=9, retryable=False
        ),
    }
    async with start_responder(config, clock=clock, actions=actions) as r:
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            firing = alert("ISO-NE")
            await r.post(notification([firing]))
            await r.settle()
            incident = await r.incident("ISO-NE")
            opened = events(logs, "circuit breaker open")
            assert opened
            assert opened[0]["log_level"] == "error"
            assert opened[0]["incident_id"] == incident["id"]
            failed = events(logs, "action step failed")
            assert [(e["log_level"], e["incident_id"], e["action"]) for e in failed] == [
                ("error", incident["id"], "throttle_api")
            ]

            # Half-open after the reset: the trial call succeeds and closes it.
            clock.advance(301)
            r.engine.breakers.before_call("test")
            r.engine.breakers.success("test")
            half_open = events(logs, "circuit breaker half-open: one trial call")
            assert [e["log_level"] for e in half_open] == ["warning"]
            assert [e["log_level"] for e in events(logs, "circuit breaker closed")] == ["warning"]

            # A recovery step that keeps failing: the incident needs attention, logged.
            await r.post(notification([resolved(firing)]))
            await r.settle()
            incident = await r.incident("ISO-NE")
            assert incident["state"] == "needs_attention"
            attention = events(logs, "incident needs attention")
            # Once when the firing step failed, once when the recovery step failed.
            assert [(e["log_level"], e["incident_id"]) for e in attention] == [
                ("error", incident["id"]),
                ("error", incident["id"]),
            ]
