"""A bounded inbox: beyond its depth or age the webhook answers 503 (Alertmanager
retries 5xx), /readyz reports the backlog, /metrics publishes depth and age.

The backlog is made the way it happens in production: another replica holds the
inbox lease and applies nothing, so transitions pile up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedguard.responder import appkeys

from .conftest import make_catalog
from .support.responder import (
    FakeClock,
    Responder,
    alert,
    counting_actions,
    notification,
    resolved,
    responder_config,
    start_responder,
)

CATALOG = make_catalog({"ISO-NE": {"datasets": ["lmp"]}, "MISO": {"datasets": ["lmp"]}})
STUCK = "another-replica"


def gauge(text: str, name: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def ready(r: Responder) -> tuple[int, dict[str, object]]:
    async with r.session.get(r.url + "/readyz") as response:
        return response.status, await response.json()


async def test_backlog_is_bounded_reported_and_drains(
    tmp_path: Path, store_options: dict[str, Any]
) -> None:
    config = responder_config(
        tmp_path,
        catalog=CATALOG,
        inbox={"max_depth": 5, "max_age_seconds": 600, "ready_max_age_seconds": 300},
        **store_options,
    )
    clock = FakeClock()
    acts = counting_actions()
    async with start_responder(config, clock=clock, actions=acts) as r:
        store = r.app[appkeys.STORE]
        assert await store.acquire("inbox", STUCK, 3600)
        for n in range(5):
            body = notification([alert("ISO-NE", dataset=f"d{n}")])
            assert (await r.post(body)).status == 200
        await r.settle()
        status, body = await ready(r)  # reads the backlog afresh
        assert status == 200
        assert body["inbox"] == {"depth": 5, "oldest_age_seconds": 0.0}

        # Full: a new notification is refused with a 503 and recorded nowhere (one that
        # may open an incident would be taken: tests/test_responder_storm.py).
        refused = await r.post(notification([resolved(alert("MISO"))]))
        assert refused.status == 503
        assert "inbox backlog: 5 transitions waiting" in (await refused.json())["error"]
        text = await r.metrics()
        assert gauge(text, "feedguard_responder_inbox_depth") == 5
        assert 'feedguard_responder_notifications_total{result="backlog"} 1.0' in text

        # Old: readiness says so, and the age is published.
        clock.advance(400)
        status, body = await ready(r)
        assert status == 503
        assert body["status"] == "backlog"
        text = await r.metrics()
        assert gauge(text, "feedguard_responder_inbox_oldest_age_seconds") == 400

        # The stuck replica goes away: the inbox drains, everything is ready again.
        await store.release("inbox", STUCK)
        await r.tick()
        status, body = await ready(r)
        assert status == 200
        assert body["inbox"] == {"depth": 0, "oldest_age_seconds": 0.0}
        assert (await r.post(notification([alert("MISO")]))).status == 200
        await r.settle()
        assert {i["provider"] for i in await r.incidents()} == {"ISO-NE", "MISO"}
        assert len(acts["throttle_api"].applied) == 1  # shared resource, held once


async def test_an_old_backlog_refuses_even_when_short(tmp_path: Path) -> None:
    config = responder_config(
        tmp_path, catalog=CATALOG, inbox={"max_depth": 100, "max_age_seconds": 60}
    )
    clock = FakeClock()
    async with start_responder(config, clock=clock, actions=counting_actions()) as r:
        store = r.app[appkeys.STORE]
        assert await store.acquire("inbox", STUCK, 3600)
        assert (await r.post(notification([alert("ISO-NE")]))).status == 200
        clock.advance(61)
        await ready(r)
        refused = await r.post(notification([resolved(alert("MISO"))]))
        assert refused.status == 503
        assert "the oldest for 61 s" in (await refused.json())["error"]
