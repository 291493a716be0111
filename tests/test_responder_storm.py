"""Alert storms: a new provider's alert is acted on before a storm of repeats for an
open incident has drained (the inbox's urgent lane), on both stores.

The backlog is made as in tests/test_responder_backlog.py: another replica holds
the inbox lease while the storm is recorded, then lets go.  No timed assertion:
the test action records how many transitions still wait when it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from feedguard.responder import appkeys
from feedguard.responder import incidents as inc
from feedguard.responder import transitions as tr
from feedguard.responder.config import Playbook, Step
from feedguard.responder.notes.render import NoteRenderer
from feedguard.responder.notes.settings import NotesSettings
from feedguard.responder.plugins import NoteRequest, Outcome, StepContext, Target
from feedguard.responder.store import Store

from .conftest import make_catalog
from .support.responder import (
    CountingAction,
    alert,
    counting_actions,
    notification,
    resolved,
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


# --- bounded incident documents ------------------------------------------------------

DOWN = Playbook(
    name="provider-down",
    matchers=('alertname="ExternalProviderDown"',),
    firing=(Step(action="throttle_api"),),
    resolved=(Step(revert="all"),),
)


def _entry(n: int, status: str = "firing") -> dict[str, Any]:
    return {
        "key": f"f{n}:T0:{status}",
        "received_at": 100.0,
        "group_key": '{}:{provider="ISO-NE"}',
        "alert": {
            "fingerprint": f"f{n}",
            "status": status,
            "labels": {"alertname": "ExternalProviderDown", "provider": "ISO-NE", "n": str(n)},
            "annotations": {"summary": "x" * 200},
            "startsAt": "2026-09-21T10:00:00Z",
            "endsAt": "",
        },
    }


def _apply(doc: dict[str, Any], numbers: range, status: str = "firing") -> tr.Applied:
    playbook = DOWN if status == "firing" else None
    applied = None
    for start in range(numbers.start, numbers.stop, 100):  # as the intake: inbox batches
        batch = [
            tr.Transition(_entry(n, status), playbook)
            for n in range(start, min(start + 100, numbers.stop))
        ]
        applied = tr.apply_transitions(doc, batch, 110.0, health_probe=False, probes_required=1)
    assert applied is not None
    return applied


def test_incident_document_size_is_bounded_and_counts_exact_with_20000_alerts() -> None:
    small = inc.new_incident("ISO-NE-100-abc", "ISO-NE", 100.0, None)
    _apply(small, range(1_000))
    doc = inc.new_incident("ISO-NE-100-abc", "ISO-NE", 100.0, None)
    _apply(doc, range(20_000))
    size = len(json.dumps(doc))
    # Twenty times the alerts, the same size (the kept transition keys and the counters
    # have a digit or two more).
    assert size - len(json.dumps(small)) < 1_000, size
    assert size < 256 * 1024
    assert len(doc["alerts"]) == tr.ALERT_SAMPLE
    assert inc.alert_counts(doc) == {
        "total": 20_000,
        "firing": 20_000,
        "resolved": 0,
        "sampled": tr.ALERT_SAMPLE,
    }
    assert inc.summary(doc)["firing"] == 20_000

    # All but one resolved (in and beyond the sample): still firing, no recovery.
    _apply(doc, range(1, 20_000), "resolved")
    assert inc.alert_counts(doc)["firing"] == 1
    assert doc["state"] == inc.OPEN
    assert len(json.dumps(doc)) < 256 * 1024  # the sample's resolves are on the timeline
    # A resolve the incident cannot pair with a firing is not part of it.
    stray = _entry(99_999, "resolved")
    applied = tr.apply_transitions(
        doc, [tr.Transition(stray, None)], 111.0, health_probe=False, probes_required=1
    )
    assert applied.accepted == [False]
    assert doc["state"] == inc.OPEN
    # The last one resolves: recovery starts.
    _apply(doc, range(0, 1), "resolved")
    assert inc.alert_counts(doc) == {
        "total": 20_000,
        "firing": 0,
        "resolved": 20_000,
        "sampled": tr.ALERT_SAMPLE,
    }
    assert doc["state"] == inc.RECOVERING


def test_the_last_resolve_beyond_the_sample_starts_recovery() -> None:
    doc = inc.new_incident("ISO-NE-100-abc", "ISO-NE", 100.0, None)
    firing = [tr.Transition(_entry(n), DOWN) for n in range(5)]
    tr.apply_transitions(doc, firing, 110.0, health_probe=False, probes_required=1, alert_sample=2)
    assert set(doc["alerts"]) == {"f0", "f1"}
    resolving = [tr.Transition(_entry(n, "resolved"), None) for n in (0, 1, 2, 3)]
    tr.apply_transitions(
        doc, resolving, 111.0, health_probe=False, probes_required=1, alert_sample=2
    )
    assert doc["state"] == inc.OPEN
    assert inc.alert_counts(doc)["firing"] == 1
    last = [tr.Transition(_entry(4, "resolved"), None)]
    tr.apply_transitions(doc, last, 112.0, health_probe=False, probes_required=1, alert_sample=2)
    assert doc["state"] == inc.RECOVERING


async def test_the_full_count_is_on_the_api_the_page_and_the_notes(tmp_path: Path) -> None:
    config = responder_config(tmp_path, catalog=CATALOG, incidents={"alert_sample": 3})
    async with start_responder(config, actions=counting_actions()) as r:
        alerts = [alert("ISO-NE", dataset=f"d{n}") for n in range(10)]
        assert (await r.post(notification(alerts))).status == 200
        await r.settle()
        assert (await r.post(notification([resolved(alerts[7])]))).status == 200
        await r.settle()
        counts = {"total": 10, "firing": 9, "resolved": 1, "sampled": 3}
        (row,) = await r.incidents()
        assert row["alert_counts"] == counts
        assert row["firing"] == 9
        body = await r.incident("ISO-NE")
        assert body["alert_counts"] == counts
        assert len(body["alerts"]) == 3
        async with r.session.get(f"{r.url}/incidents/{body['id']}") as page:
            html = await page.text()
        assert "Alerts (10: 9 firing, 1 resolved)" in html
        assert "Showing the first 3 in full" in html
        doc = await r.app[appkeys.STORE].get("incident", body["id"])

    view = inc.view(doc)
    renderer = NoteRenderer(NotesSettings(), CATALOG)
    for kind in ("initial", "update", "resolution"):
        note = NoteRequest(
            kind=kind, slot=0, incident=view, now=view.opened_at, next_update_at=view.opened_at
        )
        text, from_template = renderer.render(note)
        assert from_template
        assert "*Alerts:* 10 (9 firing, 1 resolved); the first 3" in text, kind


# --- idle after a storm --------------------------------------------------------------


class Notes:
    """A test Notifier: records what it was asked to post."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    async def post(self, request: NoteRequest) -> dict[str, Any]:
        self.kinds.append(request.kind)
        return {}


async def test_an_idle_responder_after_a_storm_does_no_work(
    tmp_path: Path, store_options: dict[str, Any]
) -> None:
    config = responder_config(tmp_path, catalog=CATALOG, **store_options)
    notes = Notes()
    async with start_responder(config, actions=counting_actions(), notifier=notes) as r:
        for body in range(4):
            alerts = [alert("ISO-NE", dataset=f"d{body}-{n}") for n in range(500)]
            assert (await r.post(notification(alerts))).status == 200
        await r.settle()
        await r.tick()
        store = r.app[appkeys.STORE]
        (after_storm,) = await store.list("incident")
        assert after_storm["state"] == "stabilised"
        assert notes.kinds == ["initial"]
        # Idle ticks: the incident is read, nothing is written, nothing is left behind
        # (no task, no per-incident lock), nothing waits in the inbox.
        for _ in range(3):
            await r.tick()
        assert await store.list("incident") == [after_storm]
        assert await store.inbox_stats() == (0, None)
        assert not r.engine._tasks
        assert r.engine.runner._locks == {}
        assert r.engine.notes._locks == {}
        assert notes.kinds == ["initial"]
        assert len(json.dumps(after_storm)) < 256 * 1024
