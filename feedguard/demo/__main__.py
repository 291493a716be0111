"""``python -m feedguard.demo`` (``make demo``): break a provider, watch the loop, recover it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import yaml

from feedguard.core.keys import last_success_key

from .processes import DemoError, Interrupted, Processes, free_port, request_stop
from .stack import Urls, start_stack
from .standin import StandIn
from .watch import Watcher

# Past the shipped catalog's 900 s freshness SLA: the feed looks 20 minutes stale.
STALE_FOR_SECONDS = 1200


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m feedguard.demo",
        description="The whole loop on loopback: stale feed -> alert -> incident -> plan -> "
        "recovery. Everything runs in dry run; Ctrl-C stops everything it started.",
    )
    parser.add_argument("--provider", default="ISO-NE", help="the provider to break (ISO-NE)")
    parser.add_argument(
        "--exit-when-resolved",
        action="store_true",
        help="exit once the incident is resolved (CI) instead of running until Ctrl-C",
    )
    parser.add_argument("--timeout", type=float, default=300, help="give up after (s)")
    parser.add_argument("--summary", type=Path, help="write the final incident JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="the feedguard checkout (current dir)"
    )
    return parser


def _datasets(workdir: Path) -> dict[str, list[str]]:
    catalog = yaml.safe_load((workdir / "external_providers.yml").read_text())
    return {
        p["name"]: list(p.get("datasets") or [])
        for p in catalog["providers"]
        if p.get("enabled", True)
    }


async def _record(client: aioredis.Redis, provider: str, datasets: list[str], at: float) -> None:
    for dataset in datasets:
        await client.set(last_success_key(provider, dataset), repr(at))


def _print_urls(urls: Urls, workdir: Path, incident: str | None) -> None:
    print(f"  Prometheus    {urls.prometheus}/alerts")
    print(f"  Alertmanager  {urls.alertmanager}/#/alerts")
    print(f"  Responder     {urls.responder}/incidents")
    if incident:
        print(f"  Incident      {urls.responder}/incidents/{incident}")
    print(f"  Logs, configs {workdir}", flush=True)


def _steps_done(watcher: Watcher, phase: str) -> bool:
    doc = watcher.incident
    if doc is None:
        return False
    steps = [s for s in doc["steps"] if s["phase"] == phase]
    return bool(steps) and all(s["status"] != "pending" for s in steps)


async def scenario(args: argparse.Namespace, workdir: Path) -> int:
    started = time.monotonic()
    standin = StandIn()
    processes = Processes(workdir)
    repo = args.repo.resolve()
    if not (repo / "rules/generator/generate.py").is_file():
        raise DemoError(f"{repo} is not a feedguard checkout: run the demo from it (--repo)")
    async with aiohttp.ClientSession() as session:
        await standin.start(free_port())
        try:
            print(
                f"starting redis-server, exporter, responder, Prometheus, Alertmanager in {workdir}"
            )
            urls, _ = await start_stack(repo, workdir, processes, standin, session)
            print(f"all started in {time.monotonic() - started:.1f}s:")
            _print_urls(urls, workdir, None)
            datasets = _datasets(workdir)
            if args.provider not in datasets:
                raise DemoError(
                    f"--provider {args.provider!r}: not an enabled provider of the catalog "
                    f"(known: {', '.join(sorted(datasets))})"
                )
            client = aioredis.Redis.from_url(urls.redis)
            try:
                now = time.time()
                for provider, names in datasets.items():
                    await _record(client, provider, names, now)
                watcher = Watcher(
                    session, urls.prometheus, urls.responder, standin, args.provider, started
                )
                await watcher.until(
                    "Prometheus to scrape the exporter with no alert active",
                    lambda: watcher.exporter_up and not watcher.alerts,
                    args.timeout,
                )
                watcher.say("demo", "every feed fresh, every health probe passing, no alert")
                return await _loop(args, watcher, client, standin, datasets, urls, workdir)
            finally:
                await client.aclose()
        finally:
            await processes.stop_all()
            await standin.stop()


async def _loop(
    args: argparse.Namespace,
    watcher: Watcher,
    client: aioredis.Redis,
    standin: StandIn,
    datasets: dict[str, list[str]],
    urls: Urls,
    workdir: Path,
) -> int:
    provider = args.provider
    deadline = time.monotonic() + float(args.timeout)

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    watcher.say(
        "demo",
        f"breaking {provider}: health endpoint answers 503, last loads "
        f"{STALE_FOR_SECONDS // 60} minutes old",
    )
    standin.broken.add(provider)
    await _record(client, provider, datasets[provider], time.time() - STALE_FOR_SECONDS)
    await watcher.until(
        "the firing steps to be planned and the initial note",
        lambda: _steps_done(watcher, "firing") and len(watcher.notes) >= 1,
        left(),
    )
    if watcher.first_planned_at is not None:
        watcher.say("demo", f"first step planned {watcher.first_planned_at:.1f}s after start")
    watcher.say("demo", f"recovering {provider}: health endpoint 200, fresh loads recorded")
    standin.broken.discard(provider)
    await _record(client, provider, datasets[provider], time.time())
    await watcher.until(
        "the incident to be resolved with its resolution note",
        lambda: (watcher.incident or {}).get("state") == "resolved" and len(watcher.notes) >= 2,
        left(),
    )
    # ResponderDetectionLagHigh stays firing for an hour after an incident detected
    # late (as the demo's, broken with loads already 20 minutes old): it is the
    # monitoring review's reminder, not part of the outage.
    await watcher.until(
        "Prometheus to clear the alerts",
        lambda: not [a for a in watcher.alerts if not a.startswith("ResponderDetectionLagHigh")],
        left(),
    )
    incident = watcher.incident or {}
    watcher.say("demo", f"incident {incident.get('id')} resolved")
    if args.summary is not None:
        summary: dict[str, Any] = {
            "incident": incident,
            "notes": watcher.notes,
            "first_planned_step_seconds": watcher.first_planned_at,
        }
        args.summary.write_text(json.dumps(summary, indent=2))
    _print_urls(urls, workdir, incident.get("id"))
    if args.exit_when_resolved:
        return 0
    print("Everything keeps running for you to look around; Ctrl-C stops it all.", flush=True)
    while True:
        await watcher.until("Ctrl-C", lambda: False, 10**9, interval=2)


async def _until_stopped(args: argparse.Namespace, workdir: Path) -> int:
    """The scenario; SIGINT (Ctrl-C) or SIGTERM cancel it, and its cleanup stops every process.

    Handlers are installed explicitly: a shell starting the demo in the background
    leaves SIGINT ignored, and SIGTERM would otherwise end it without cleanup.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def stop(name: str) -> None:
        received.append(name)
        request_stop(name)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        return await scenario(args, workdir)
    except (asyncio.CancelledError, Interrupted):
        if not received:
            raise
        print(
            f"\n{received[0]}: stopped; every process the demo started is stopped",
            file=sys.stderr,
        )
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="feedguard-demo-"))
    try:
        return asyncio.run(_until_stopped(args, workdir))
    except (DemoError, TimeoutError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        print(f"logs: {workdir}", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
