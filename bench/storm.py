"""Storm benchmark: 100,000 alerts for one provider in 1,000-alert bodies, then one
new provider's alert, on each store.

    .venv/bin/python -m bench.storm [--alerts 100000] [--per-body 1000] [--stores sqlite,redis]

The responder runs in its own process, exactly as served (``create_app``, its
background scheduler); its playbook's one step is a bench action that calls
nothing outside (``Mark``).
This process posts the storm's bodies one after another, then the new
provider's alert, and reports:

- ``delay to first action``: from the new alert's POST to the first action record
  on its incident (the record's own time, the responder's clock, the same host);
  the goal is under 5 s, whatever the backlog.
- ``backlog then``: transitions still waiting when that action ran (the storm was
  not drained first).
- ``drain rate``: transitions applied per second, from the first storm body to the
  inbox empty (read from /readyz).
- ``idle``: the responder's CPU use (of one core) and RSS change over 20 s after
  the drain, with nothing arriving (it still ticks every ``scheduler.tick_seconds``).

The inbox limits are raised so the whole storm is taken (with the shipped
``inbox.max_depth`` of 20,000 the rest would get 503s and wait in Alertmanager).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from feedguard.responder.plugins import JSON, Outcome, StepContext, Target

from .services import free_port, redis_server, running

TOKEN = "bench-token"
IDLE_SECONDS = 20.0
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Mark:
    """The bench playbook's one step: it calls no outside system, so the delay measured
    is the responder's own."""

    name: ClassVar[str] = "bench_mark"
    circuit: ClassVar[str] = "bench"
    reversible: ClassVar[bool] = False

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        return [Target(description="bench mark", resource=None)]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        return Outcome(previous=None)

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        return Outcome(previous=None)


def serve(port: int, store: str, redis_url: str, workdir: Path) -> None:
    from aiohttp import web

    from feedguard.core.catalog import parse_catalog
    from feedguard.core.log import configure_logging
    from feedguard.core.schema import load_model
    from feedguard.responder.app import create_app
    from feedguard.responder.config import ResponderConfig

    configure_logging("error", "json")
    catalog = parse_catalog(
        {"providers": [{"name": f"P{n}", "datasets": ["d"]} for n in range(2)]}, "<bench>"
    )
    config = load_model(
        ResponderConfig,
        {
            "dry_run": False,
            "store": {"backend": store, "sqlite_path": str(workdir / "responder.db")},
            "redis": {"url": redis_url},
            "webhook": {"bearer_token": TOKEN},
            "inbox": {"max_depth": 1_000_000, "max_age_seconds": 86_400},
            "playbooks": [
                {
                    "name": "down",
                    "matchers": ['alertname="ExternalProviderDown"'],
                    "firing": [{"action": Mark.name}],
                }
            ],
        },
        "<bench>",
    )
    config = config.model_copy(update={"catalog": catalog})
    web.run_app(
        create_app(config, actions={Mark.name: Mark()}), host="127.0.0.1", port=port, print=None
    )


def body(provider: str, first: int, count: int) -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "ExternalProviderDown",
                "provider": provider,
                "severity": "page",
                "instance": f"i{n}",
            },
            "annotations": {"summary": f"{provider} instance i{n} failing"},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{provider}{n:014x}",
        }
        for n in range(first, first + count)
    ]
    return json.dumps(
        {
            "receiver": "feedguard",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"provider": provider},
            "commonLabels": {"alertname": "ExternalProviderDown", "provider": provider},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "version": "4",
            "groupKey": f'{{}}:{{provider="{provider}"}}',
            "truncatedAlerts": 0,
        }
    ).encode()


@dataclass
class Figures:
    store: str
    alerts: int
    post_seconds: float
    delay: float
    backlog_then: int
    drain_seconds: float

    @property
    def drain_rate(self) -> float:
        return (self.alerts + 1) / self.drain_seconds


async def _json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()


async def _first_action(session: aiohttp.ClientSession, base: str) -> tuple[float, int]:
    """(the new incident's first action record time, inbox depth seen then)."""
    while True:
        depth = (await _json(session, f"{base}/readyz"))["inbox"]["depth"]
        listed = await _json(session, f"{base}/api/v1/incidents")
        for row in listed["incidents"]:
            if row["provider"] == "P1" and row["actions"]:
                detail = await _json(session, f"{base}/api/v1/incidents/{row['id']}")
                return min(a["at"] for a in detail["actions"]), depth
        # Polling: the responder is another process; nothing to wait on.
        await asyncio.sleep(0.05)


async def _drained(session: aiohttp.ClientSession, base: str) -> None:
    # Polling: the inbox is another process's; nothing to wait on.
    while (await _json(session, f"{base}/readyz"))["inbox"]["depth"]:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def storm(base: str, store: str, alerts: int, per_body: int) -> Figures:
    url = f"{base}/webhook/alertmanager"
    bodies = [body("P0", n, min(per_body, alerts - n)) for n in range(0, alerts, per_body)]
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.time()
        for data in bodies:
            async with session.post(url, data=data, headers=HEADERS) as response:
                if response.status != 200:
                    raise RuntimeError(f"storm body: HTTP {response.status}")
        posted = time.time()
        sent = time.time()
        async with session.post(url, data=body("P1", 0, 1), headers=HEADERS) as response:
            if response.status != 200:
                raise RuntimeError(f"new alert: HTTP {response.status}")
        async with asyncio.timeout(3600):
            acted_at, depth = await _first_action(session, base)
            await _drained(session, base)
        done = time.time()
    return Figures(store, alerts, posted - started, acted_at - sent, depth, done - started)


def report(f: Figures) -> None:
    goal = "ok" if f.delay < 5 else "OVER the 5 s goal"
    print(
        f"{f.store:<7} {f.alerts} alerts posted in {f.post_seconds:6.1f} s; "
        f"new provider's first action after {f.delay:6.2f} s ({goal}) with "
        f"{f.backlog_then} transitions still waiting; drain rate "
        f"{f.drain_rate:7.0f} transitions/s ({f.drain_seconds:6.1f} s in all)"
    )


@dataclass(frozen=True)
class Child:
    url: str  # http://127.0.0.1:PORT
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


async def idle(child: Child, seconds: float = IDLE_SECONDS) -> None:
    """After the storm: the responder's CPU use and RSS growth while nothing arrives."""
    cpu, rss = child.cpu_seconds(), child.rss_bytes()
    await asyncio.sleep(seconds)
    used = child.cpu_seconds() - cpu
    grown = child.rss_bytes() - rss
    print(
        f"        idle {seconds:.0f} s after the storm: CPU {used / seconds:6.1%} of a core, "
        f"RSS {child.rss_bytes() / 2**20:5.0f} MiB ({grown / 2**20:+.1f} MiB)"
    )


async def run(alerts: int, per_body: int, stores: list[str], workdir: Path, redis_url: str) -> int:
    print(
        f"storm: {alerts} alerts for one provider in {per_body}-alert bodies, then one "
        "alert of another provider; responder in its own process"
    )
    for store in stores:
        sub = workdir / store
        sub.mkdir()
        port = free_port()
        argv = [sys.executable, "-m", "bench.storm", "--serve", "responder", "--port", str(port)]
        argv += ["--store", store, "--redis", redis_url, "--workdir", str(sub)]
        with running(argv, sub / "responder.log", port) as process:
            child = Child(f"http://127.0.0.1:{port}", process.pid)
            report(await storm(child.url, store, alerts, per_body))
            await idle(child)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--per-body", type=int, default=1_000)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--serve", choices=["responder"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.port, args.store, args.redis, Path(args.workdir))
        return 0
    stores = [s for s in args.stores.split(",") if s]
    with (
        tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp,
        redis_server(Path(tmp)) as redis_url,
    ):
        return asyncio.run(run(args.alerts, args.per_body, stores, Path(tmp), redis_url))


if __name__ == "__main__":
    sys.exit(main())
