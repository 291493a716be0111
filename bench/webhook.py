"""Webhook benchmark: the responder's POST /webhook/alertmanager on the Redis store,
against a bare aiohttp handler that only parses the JSON, measured in the same run.

    .venv/bin/python -m bench.webhook [--requests 2000] [--rounds 5] [--concurrency 16]
                                      [--apply-off]

A real ``redis-server`` is started on a free loopback port.  Each server runs in
its own process (the responder through ``create_app``, exactly as served, with
bearer auth and its background scheduler); this process is the load generator:
a fixed number of POSTs of a three-alert Alertmanager v4 payload over ``concurrency``
keep-alive connections, after a warm-up.  Scenarios:

- ``resend``: every request repeats one notification (Alertmanager's repeat
  interval, HA peers): authenticate, validate, one Lua call that finds all three
  transitions already recorded.
- ``1 in 10 new``: every tenth request carries three new alert transitions.
- ``all new``: every request carries three new alert transitions (a new
  ``startsAt``), so each is recorded, queued, and applied to the incident by the
  scheduler running in the same process.

``--apply-off`` switches the responder's scheduler off (no kick, no tick; the
inbox is emptied between rounds): the webhook and its durable write alone, the
ceiling no apply rate can lift.

Each line also gives the server process's CPU time per request (user + system
from ``/proc``, the responder's apply included): on the shared machine this
moves far less than throughput.  In brackets, the load generator's and
redis-server's CPU per request meanwhile: on a 2-core machine the three share
the cores, so the ratio is about (bare + its load generator) over (responder +
its load generator + Redis).  Figures are printed, never asserted; the goal
is at least half the bare handler's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .services import free_port, redis_server, running

TOKEN = "bench-token"


@contextlib.contextmanager
def server(
    kind: str, redis_url: str, workdir: Path, extra: Sequence[str] = (), name: str = ""
) -> Iterator[str]:
    """``extra``: more arguments of ``--serve`` (bench/tracing.py's tracing set-up)."""
    with served(kind, redis_url, workdir, extra, name) as (url, _):
        yield url


@contextlib.contextmanager
def served(
    kind: str, redis_url: str, workdir: Path, extra: Sequence[str] = (), name: str = ""
) -> Iterator[tuple[str, int]]:
    """The server's URL and its process id (for ``cpu_seconds``)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.webhook", "--serve", kind, "--port", str(port)]
    argv += ["--redis", redis_url, "--workdir", str(workdir), *extra]
    with running(argv, workdir / f"{name or kind}.log", port) as process:
        yield f"http://127.0.0.1:{port}/webhook/alertmanager", process.pid


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``): unlike
    throughput, hardly moved by what else the shared machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """User plus system CPU time of this process (the load generator)."""
    times = os.times()
    return times.user + times.system


@contextlib.asynccontextmanager
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    """A client of the bench's redis-server for one look, closed after it."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def redis_cpu(redis_url: str) -> float:
    """redis-server's user plus system CPU time so far (``INFO cpu``)."""
    async with redis_client(redis_url) as client:
        info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- the servers (child processes) -----------------------------------------------------


def serve_bare(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        json.loads(await request.read())
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/webhook/alertmanager", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_responder(
    port: int,
    redis_url: str,
    workdir: Path,
    tracing: dict[str, Any] | None = None,
    apply: bool = True,
) -> None:
    """``apply`` False: the scheduler switched off (no kick, no tick), so the process
    does only the webhook and its durable write (the ceiling no apply rate can lift)."""

    from aiohttp import web

    from feedguard.core.catalog import parse_catalog
    from feedguard.core.log import configure_logging
    from feedguard.core.schema import load_model
    from feedguard.responder import appkeys
    from feedguard.responder.app import create_app
    from feedguard.responder.config import ResponderConfig

    configure_logging("error", "json")
    catalog = parse_catalog(
        {"providers": [{"name": f"P{n}", "datasets": ["d"]} for n in range(10)]}, "<bench>"
    )
    config = load_model(
        ResponderConfig,
        {
            "dry_run": True,  # the runbook's steps are planned and recorded, not executed
            "store": {"backend": "redis"},
            "redis": {"url": redis_url},
            "webhook": {"bearer_token": TOKEN},
            **({"tracing": tracing} if tracing else {}),
            "playbooks": [
                {
                    "name": "down",
                    "matchers": ['alertname="ExternalProviderDown"'],
                    "firing": [{"action": "noop"}],
                }
            ],
        },
        "<bench>",
    )
    config = config.model_copy(update={"catalog": catalog})
    app = create_app(config, actions={}, background=apply)
    if not apply:

        async def no_kick(app: web.Application) -> None:
            # Bench only: the engine exists (cleanup_ctx, run before this) but never runs.
            engine = app[appkeys.ENGINE]
            engine.kick = lambda: None  # type: ignore[method-assign]  # the webhook alone

        app.on_startup.append(no_kick)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- the load generator ----------------------------------------------------------------


def payload(n: int, new: bool) -> bytes:
    starts = (
        f"2026-01-01T00:{(n // 60) % 60:02d}:{n % 60:02d}.{n:09d}Z"
        if new
        else ("2026-01-01T00:00:00Z")
    )
    alerts = [
        {
            "status": "firing",
            "labels": {
                "alertname": "ExternalProviderDown",
                "provider": f"P{i}",
                "severity": "page",
                "team": "data-platform",
            },
            "annotations": {
                "summary": f"Provider P{i} health probe failing",
                "description": "The health probe has failed for 5 minutes. " * 4,
                "runbook_url": "https://runbooks.example/external-data-outage",
            },
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=external_provider_probe_success",
            "fingerprint": f"{i:016x}",
        }
        for i in range(3)
    ]
    body = {
        "receiver": "feedguard",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"alertname": "ExternalProviderDown"},
        "commonLabels": {"alertname": "ExternalProviderDown", "severity": "page"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="ExternalProviderDown"}',
        "truncatedAlerts": 0,
    }
    return json.dumps(body).encode()


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    # Time after the last answer until the scheduler had applied every recorded
    # transition (the inbox empty): work the webhook deferred.
    drain: float = 0.0
    # CPU seconds the server process used for the round (its drain included).
    cpu: float = 0.0
    # CPU seconds the load generator (this process) and redis-server used meanwhile:
    # on a small machine they share the cores with the server (the ratio's budget).
    client_cpu: float = 0.0
    redis_cpu: float = 0.0

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def throughput_drained(self) -> float:
        return self.requests / (self.seconds + self.drain)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return sorted(self.latencies)[int(len(self.latencies) * 0.99) - 1]


def bodies(requests: int, new: int, offset: int) -> list[bytes]:
    """``new``: every ``new``-th request carries new transitions (0: none)."""
    return [payload(offset + n, bool(new) and n % new == 0) for n in range(requests)]


async def load(url: str, bodies: list[bytes], concurrency: int) -> Result:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: HTTP {response.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(len(bodies), elapsed, latencies)


async def drained(redis_url: str) -> float:
    """Seconds until the responder's inbox is empty (every recorded transition applied)."""
    started = time.perf_counter()
    async with redis_client(redis_url) as client, asyncio.timeout(60):
        # Polling: the inbox lives in another process, there is nothing to wait on.
        while await client.llen("feedguard:inbox"):  # noqa: ASYNC110
            await asyncio.sleep(0.002)
    return time.perf_counter() - started


def merged(results: list[Result]) -> Result:
    return Result(
        sum(r.requests for r in results),
        sum(r.seconds for r in results),
        [x for r in results for x in r.latencies],
        sum(r.drain for r in results),
        sum(r.cpu for r in results),
        sum(r.client_cpu for r in results),
        sum(r.redis_cpu for r in results),
    )


def report(name: str, result: Result, base: Result, ratios: list[float]) -> None:
    ratio = result.throughput / base.throughput
    line = (
        f"{name:<26} {result.throughput:7.0f} req/s  p50 {result.p50 * 1000:6.2f} ms  "
        f"p99 {result.p99 * 1000:6.2f} ms  throughput ratio {ratio:5.2f} "
        f"(per-round median {statistics.median(ratios):4.2f})  "
        f"p99 ratio {result.p99 / base.p99:5.2f}  "
        f"CPU {result.cpu / result.requests * 1e6:4.0f} µs/request"
        f" (load generator {result.client_cpu / result.requests * 1e6:3.0f},"
        f" Redis {result.redis_cpu / result.requests * 1e6:3.0f})"
    )
    if result.drain:
        drained_ratio = result.throughput_drained / base.throughput
        line += f"  incl. apply {drained_ratio:4.2f} (drain {result.drain * 1000:.0f} ms)"
    print(line)


async def emptied(redis_url: str) -> float:
    """With the apply off: drop what the round recorded (nothing applies it); 0 s."""
    async with redis_client(redis_url) as client:
        await client.delete("feedguard:inbox", "feedguard:inbox:urgent")
    return 0.0


async def run(
    requests: int,
    concurrency: int,
    rounds: int,
    redis_url: str,
    workdir: Path,
    apply: bool = True,
) -> int:
    warmup = max(200, requests // 5)
    extra = [] if apply else ["--apply-off"]
    after_round = drained if apply else emptied
    with (
        served("bare", redis_url, workdir) as (bare_url, bare_pid),
        served("responder", redis_url, workdir, extra) as (responder_url, responder_pid),
    ):
        for url in (bare_url, responder_url):
            await load(url, bodies(warmup, 0, 0), concurrency)
        print(
            f"{requests} requests x {rounds} rounds per side, concurrency {concurrency}, "
            "3 alerts per request, loopback, Redis store; 'incl. apply': throughput counting "
            "the time until the scheduler had applied every new transition; CPU: the "
            "server process's user+system time per request (apply included)"
            + ("" if apply else "; APPLY OFF: the webhook and its durable write alone")
        )
        offset = 0
        for scenario, new in (("resend", 0), ("1 in 10 new", 10), ("all new", 1)):
            bare: list[Result] = []
            responder: list[Result] = []
            # Interleaved rounds, the same bodies for both sides, the order alternating:
            # both see the same machine conditions, and the responder's deferred work
            # (drained before the next round starts) never overlaps the bare side's.
            for index in range(rounds):
                offset += requests
                round_bodies = bodies(requests, new, offset)
                for side in ("bare", "responder") if index % 2 == 0 else ("responder", "bare"):
                    pid = bare_pid if side == "bare" else responder_pid
                    before, client, redis = cpu_seconds(pid), own_cpu(), await redis_cpu(redis_url)
                    if side == "bare":
                        result = await load(bare_url, round_bodies, concurrency)
                        bare.append(result)
                    else:
                        result = await load(responder_url, round_bodies, concurrency)
                        result.drain = await after_round(redis_url)
                        responder.append(result)
                    result.cpu = cpu_seconds(pid) - before
                    result.client_cpu = own_cpu() - client
                    result.redis_cpu = await redis_cpu(redis_url) - redis
            ratios = [r.throughput / b.throughput for r, b in zip(responder, bare, strict=True)]
            base = merged(bare)
            report("bare JSON handler", base, base, [1.0])
            name = scenario if apply else f"{scenario}, apply off"
            report(f"responder ({name})", merged(responder), base, ratios)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", choices=["bare", "responder"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--tracing", help=argparse.SUPPRESS)  # JSON: the tracing section
    parser.add_argument(
        "--apply-off",
        action="store_true",
        help="switch the responder's scheduler off (no kick, no tick): what the webhook and "
        "its durable write alone reach, the ceiling no apply rate can lift",
    )
    args = parser.parse_args(argv)
    if args.serve == "bare":
        serve_bare(args.port)
        return 0
    if args.serve == "responder":
        tracing = json.loads(args.tracing) if args.tracing else None
        serve_responder(args.port, args.redis, Path(args.workdir), tracing, not args.apply_off)
        return 0
    os.environ.setdefault("PYTHONHASHSEED", "0")
    with (
        tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp,
        redis_server(Path(tmp)) as redis_url,
    ):
        return asyncio.run(
            run(
                args.requests,
                args.concurrency,
                args.rounds,
                redis_url,
                Path(tmp),
                apply=not args.apply_off,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
