"""Detection lag (runbook 7): per incident, on the incident, as a histogram, in the note."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import redis

from feedguard.responder.detection import detection_lag, probe_onset, stale_onset
from feedguard.responder.notes.render import NoteRenderer
from feedguard.responder.notes.settings import NotesSettings

from .conftest import make_catalog
from .exporter_support import value
from .support import incidents as views
from .support.responder import (
    T0,
    CountingAction,
    FakeClock,
    alert,
    notification,
    responder_config,
    start_responder,
)

SLA = 900.0
CATALOG = make_catalog(
    {
        "ISO-NE": {"datasets": ["lmp", "load"], "freshness_sla_seconds": SLA},
        "MISO": {"datasets": ["lmp"]},
        "EIA": {"datasets": ["rto"]},
    }
)
PLAYBOOKS = [
    {"name": "down", "matchers": ['alertname=~"External.*"'], "firing": [{"action": "noop"}]}
]


def test_the_first_dataset_to_go_stale_sets_the_onset() -> None:
    onset = stale_onset({"lmp": b"1000", "load": "400", "gone": None, "bad": b"x"}, SLA)
    assert onset == (400 + SLA, "load")
    assert stale_onset({"lmp": None, "load": b"nan"}, SLA) is None


def test_a_failing_status_gives_its_since() -> None:
    assert probe_onset(json.dumps({"status": "down", "since": 5000, "checked_at": 6000})) == 5000
    assert probe_onset(b'{"status": "DEGRADED", "since": 7000.5}') == 7000.5
    # Up, a bare string, no since, a boolean since: no onset.
    assert probe_onset('{"status": "up", "since": 5000}') is None
    assert probe_onset("down") is None
    assert probe_onset('{"status": "down"}') is None
    assert probe_onset('{"status": "down", "since": true}') is None
    assert probe_onset(None) is None


def test_the_lag_runs_from_the_earliest_onset_not_after_the_notification() -> None:
    lag = detection_lag(10_000.0, (9_000.0, "lmp"), 9_500.0)
    assert lag == {
        "seconds": 1000.0,
        "source": "data_stale",
        "dataset": "lmp",
        "onset_at": 9_000.0,
        "first_notification_at": 10_000.0,
        "over_threshold": True,
    }
    probe = detection_lag(10_000.0, (9_900.0, "lmp"), 9_800.0)
    assert probe is not None
    assert (probe["source"], probe["seconds"], probe["over_threshold"]) == (
        "probe_failed",
        200.0,
        False,
    )
    # Data not stale yet when the provider-down alert came: only the probe counts.
    later = detection_lag(10_000.0, (10_500.0, "lmp"), 9_990.0)
    assert later is not None
    assert later["seconds"] == 10.0
    assert detection_lag(10_000.0, (10_500.0, "lmp"), None) is None
    assert detection_lag(10_000.0, None, None) is None


async def test_incidents_carry_their_lag_and_the_histogram_counts_each_once(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    # ISO-NE: load's last success 1320 s before T0, SLA 900 s: stale 420 s before the alert.
    redis_client.set("external:last_success:ISO-NE:lmp", str(T0 - 600))
    redis_client.set("external:last_success:ISO-NE:load", str(T0 - 1320))
    # MISO: data unknown, probe down since 60 s before the alert.
    redis_client.set(
        "external:provider_status:MISO", json.dumps({"status": "down", "since": T0 - 60})
    )
    config = responder_config(tmp_path, catalog=CATALOG, playbooks=PLAYBOOKS, redis_url=redis_url)
    async with start_responder(
        config, clock=FakeClock(), actions={"noop": CountingAction("noop")}
    ) as r:
        body = notification([alert("ISO-NE"), alert("MISO"), alert("EIA")])
        await r.post(body)
        await r.post(body)  # a re-send opens nothing new, observes nothing new
        await r.settle()
        iso = (await r.incident("ISO-NE"))["detection"]
        assert iso["seconds"] == 420.0
        assert (iso["source"], iso["dataset"], iso["over_threshold"]) == (
            "data_stale",
            "load",
            True,
        )
        assert iso["onset_at"] == T0 - 420
        miso = (await r.incident("MISO"))["detection"]
        assert (miso["seconds"], miso["source"], miso["over_threshold"]) == (
            60.0,
            "probe_failed",
            False,
        )
        assert (await r.incident("EIA"))["detection"] is None
        async with r.session.get(r.url + "/metrics") as response:
            text = await response.text()
    name = "feedguard_responder_detection_lag_seconds"
    assert value(text, f"{name}_count", provider="ISO-NE") == 1
    assert value(text, f"{name}_bucket", provider="ISO-NE", le="300.0") == 0
    assert value(text, f"{name}_bucket", provider="ISO-NE", le="600.0") == 1
    assert value(text, f"{name}_bucket", provider="MISO", le="60.0") == 1
    assert value(text, f"{name}_sum", provider="MISO") == 60
    # Known from the start, at 0, so increase() sees the first incident.
    assert value(text, f"{name}_count", provider="EIA") == 0


def _resolution(detection: dict[str, Any] | None) -> str:
    view = dataclasses.replace(
        views.incident(state="resolved", resolved_at=views.T0 + 3600), detection=detection
    )
    renderer = NoteRenderer(NotesSettings(), make_catalog({"EIA": {"datasets": ["rto"]}}))
    text, _ = renderer.render(views.request("resolution", view, views.T0 + 3600))
    return text


def test_the_resolution_note_reports_the_lag() -> None:
    lag = detection_lag(views.T0, (views.T0 - 432, "rto"), None)
    text = _resolution(lag)
    assert "*Detection lag:* 7m from data stale (rto)" in text
    assert "over 5 min: review thresholds and probes (runbook 7)" in text
    quick = _resolution(detection_lag(views.T0, None, views.T0 - 90))
    assert "*Detection lag:* 1m from first failed probe" in quick
    assert "review thresholds" not in quick
    assert "*Detection lag:* not known" in _resolution(None)
