"""Watch Prometheus, the responder and the stand-in Slack; print what happens as it happens."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp

from .processes import check_stop
from .standin import StandIn

_ACCEPTED = re.compile(
    r'^feedguard_responder_notifications_total\{result="accepted"\} (\S+)$', re.M
)
# Timeline events that mirror an action record: the record is printed instead.
_RECORD_EVENTS = frozenset(
    {
        "step planned (dry run)",
        "revert planned (dry run)",
        "step applied",
        "step reverted",
        "step joined existing change",
        "step failed",
        "revert failed",
        "revert skipped",
        "revert deferred to last holder",
    }
)
# Labels that say which alert it is; the rest (severity, team, reason) are noise here.
_NAMING = ("provider", "dataset", "dag_id", "suite")


def alert_name(labels: dict[str, str]) -> str:
    inner = ", ".join(f"{k}={labels[k]}" for k in _NAMING if k in labels)
    return f"{labels.get('alertname', '?')}{{{inner}}}"


def describe_action(record: dict[str, Any]) -> str:
    """One action record as a line: what, on what, and the value it replaced or restored."""
    undo = "undo " if record.get("reverts") else ""
    what = f"{record['action']}: {undo}{record['target']}"
    detail = record.get("detail") or {}
    if record["result"] == "dry_run":
        kind = "revert planned (dry run)" if record.get("reverts") else "planned (dry run)"
        why = f" — {detail['why']}" if detail.get("why") else ""
        return f"{kind}: {what}{why}"
    extra = ""
    if record.get("previous") is not None:
        extra += f", replaced {record['previous']!r}"
    if "restored" in detail:
        extra += f", restored {detail['restored']!r}"
    if detail.get("why"):
        extra += f" — {detail['why']}"
    if record.get("error"):
        extra += f" — {record['error']}"
    return f"{record['result']}: {what}{extra}"


@dataclass
class Watcher:
    """Polls and prints; the scenario reads ``incident`` and the note lists it keeps."""

    session: aiohttp.ClientSession
    prometheus: str
    responder: str
    standin: StandIn
    provider: str
    started: float = field(default_factory=time.monotonic)
    out: TextIO = sys.stdout
    alerts: dict[str, str] = field(default_factory=dict)
    accepted: float = 0.0
    incident: dict[str, Any] | None = None
    seen_timeline: dict[int, int] = field(default_factory=dict)
    seen_actions: int = 0
    notes: list[str] = field(default_factory=list)
    first_planned_at: float | None = None
    exporter_up: bool = False

    def say(self, source: str, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[+{elapsed:5.1f}s] {source:<12} {message}", file=self.out, flush=True)

    async def _get(self, url: str) -> Any:
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status != 200:
                    return None
                if response.content_type == "application/json":
                    return await response.json()
                return await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def poll(self) -> None:
        await self._prometheus()
        await self._responder_metrics()
        await self._incident()
        while not self.standin.notes.empty():
            text = self.standin.notes.get_nowait()
            self.notes.append(text)
            self.say("slack", "note posted to #data-platform (stand-in):")
            for line in text.splitlines():
                print(f"{'':22}│ {line}", file=self.out, flush=True)

    async def _prometheus(self) -> None:
        up = await self._get(f"{self.prometheus}/api/v1/query?query=up")
        if isinstance(up, dict):
            self.exporter_up = any(
                r["metric"].get("job") == "feedguard-exporter" and r["value"][1] == "1"
                for r in up["data"]["result"]
            )
        body = await self._get(f"{self.prometheus}/api/v1/alerts")
        if not isinstance(body, dict):
            return
        now: dict[str, str] = {}
        for alert in body["data"]["alerts"]:
            now[alert_name(alert["labels"])] = alert["state"]
        for name, state in sorted(now.items()):
            if self.alerts.get(name) != state:
                self.say("prometheus", f"alert {state}: {name}")
        for name in sorted(set(self.alerts) - set(now)):
            self.say("prometheus", f"alert resolved: {name}")
        self.alerts = now

    async def _responder_metrics(self) -> None:
        text = await self._get(f"{self.responder}/metrics")
        if not isinstance(text, str):
            return
        match = _ACCEPTED.search(text)
        count = float(match.group(1)) if match else 0.0
        if count > self.accepted:
            self.say("responder", "notification received from Alertmanager (accepted)")
            self.accepted = count

    async def _incident(self) -> None:
        if self.incident is None:
            body = await self._get(f"{self.responder}/api/v1/incidents?provider={self.provider}")
            if not isinstance(body, dict) or not body["incidents"]:
                return
            ident = body["incidents"][0]["id"]
        else:
            ident = self.incident["id"]
        doc = await self._get(f"{self.responder}/api/v1/incidents/{ident}")
        if not isinstance(doc, dict):
            return
        if self.incident is None:
            self.say("responder", f"incident opened: {ident}")
            self.say("responder", f"incident page: {self.responder}/incidents/{ident}")
        self.incident = doc
        # Timeline entries and action records, printed in the order they happened.
        lines: list[tuple[float, str, str]] = []
        for index, entry in enumerate(doc["timeline"]):
            repeats = int(entry.get("repeats", 1))
            if self.seen_timeline.get(index, 0) >= repeats:
                continue
            self.seen_timeline[index] = repeats
            if entry["event"] == "incident opened" or entry["event"] in _RECORD_EVENTS:
                continue
            suffix = f" (x{repeats})" if repeats > 1 else ""
            at = float(entry.get("last_at", entry["at"]))
            lines.append((at, "incident", f"{entry['event']}{suffix}"))
        for record in doc["actions"][self.seen_actions :]:
            if record["result"] == "dry_run" and self.first_planned_at is None:
                self.first_planned_at = time.monotonic() - self.started
            lines.append((float(record["at"]), "step", describe_action(record)))
        self.seen_actions = len(doc["actions"])
        for _, source, message in sorted(lines, key=lambda line: line[0]):
            self.say(source, message)

    async def until(
        self, what: str, done: Callable[[], bool], within: float, interval: float = 0.5
    ) -> None:
        deadline = time.monotonic() + within
        while True:
            check_stop()
            await self.poll()
            if done():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up after {within:.0f}s waiting for {what}")
            await asyncio.sleep(interval)
