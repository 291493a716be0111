"""Alert storms: a new provider's alert is acted on before a storm of repeats for an
open incident has drained (the inbox's urgent lane), on both stores.

The backlog is made as in tests/test_responder_backlog.py: another replica holds
the inbox lease while the storm is recorded, then lets go.  No timed assertion:
the test action records how many transitions still wait when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedguard.responder import appkeys
from feedguard.responder.plugins import Outcome, StepContext, Target
from feedguard.responder.store import Store

from .conftest import make_catalog
from .support.responder import (
    CountingAction,
    alert,
    counting_actions,
    notification,
    responder_config,
    start_responder,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}, "MISO": {"datasets": ["lmp"]}})
STUCK = "another-replica"
STORM_BODIES, STORM_ALERTS = 10, 300


class BacklogAtApply(CountingAction):
    """Records, per incident, the inbox depth when its first action ran."""

    def __init__(self) -> None:
        super().__init__("throttle_api")
        self.store: Store | None = None  # the responder's, once it started
        self.depth: dict[str, int] = {}

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        assert self.store is not None
        depth, _ = await self.store.inbox_stats()
        self.depth.setdefault(ctx.incident.provider, depth)
        return await super().apply(ctx, target)


async def test_a_new_incident_is_acted_on_before_the_storm_drains(
    tmp_path: Path, store_options: dict[str, Any]
) -> None:
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        inbox={"max_depth": STORM_BODIES * STORM_ALERTS},
        **store_options,
    )
    probe = BacklogAtApply()
    acts: dict[str, CountingAction] = {**counting_actions(), "throttle_api": probe}
    async with start_responder(config, actions=acts) as r:
        store = probe.store = r.app[appkeys.STORE]
        assert (await r.post(notification([alert("ISO-NE")]))).status == 200
        await r.settle()
        assert probe.depth == {"ISO-NE": 0}

        # A storm of new alerts for the open incident piles up in the inbox...
        assert await store.acquire("inbox", STUCK, 3600)
        for body in range(STORM_BODIES):
            alerts = [alert("ISO-NE", dataset=f"d{body}-{n}") for n in range(STORM_ALERTS)]
            assert (await r.post(notification(alerts))).status == 200
        storm = STORM_BODIES * STORM_ALERTS
        assert (await store.inbox_stats())[0] == storm
        # ...far beyond inbox.max_depth, yet MISO's first alert is taken (it may open an
        # incident), while another storm body is refused.
        await r.app[appkeys.INBOX].read()  # the webhook's view of the backlog, afresh
        more = notification([alert("ISO-NE", dataset=f"x{n}") for n in range(3)])
        assert (await r.post(more)).status == 503
        assert (await r.post(notification([alert("MISO")]))).status == 200
        await r.settle()
        assert (await store.inbox_stats())[0] == storm + 1

        await store.release("inbox", STUCK)
        r.engine.kick()
        await r.settle()
        # MISO's incident opened and its first action ran with most of the storm waiting.
        assert probe.depth["MISO"] > storm // 2, probe.depth
        assert (await store.inbox_stats())[0] == 0
        incidents = {i["provider"]: i for i in await r.incidents()}
        assert set(incidents) == {"ISO-NE", "MISO"}
        assert incidents["ISO-NE"]["firing"] == storm + 1
