"""A step that fails before any target (unknown action, targets() raising) is recorded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from feedguard.responder.plugins import StepContext, Target

from .conftest import make_catalog
from .support.responder import (
    CountingAction,
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
        "firing": [{"action": "throttle_api"}, {"action": "pause_dags"}],
        "resolved": [],
    }
]


class PlanningFails(CountingAction):
    def targets(self, ctx: StepContext) -> Sequence[Target]:
        raise RuntimeError("no configmap named")


async def test_unknown_action_and_failed_planning_are_recorded(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS)
    # pause_dags is missing from the actions this responder runs.
    actions = {"throttle_api": PlanningFails("throttle_api")}
    async with start_responder(config, actions=actions) as r:
        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
    assert incident["state"] == "needs_attention"
    failures = [(a["action"], a["target"], a["result"], a["error"]) for a in incident["actions"]]
    assert failures == [
        ("throttle_api", "throttle_api (planning)", "failure", "targets(): no configmap named"),
        ("pause_dags", "pause_dags (unknown action)", "failure", "unknown action 'pause_dags'"),
    ]
    assert [e["event"] for e in incident["timeline"]].count("step failed") == 2
