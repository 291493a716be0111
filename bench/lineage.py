"""Lineage intake benchmark: 1,000 OpenLineage events a second posted to POST /api/v1/lineage.

    .venv/bin/python -m bench.lineage [--rate 1000] [--seconds 10] [--connections 32]

A real ``redis-server`` and a real ``feedguard-exporter`` process (lineage on,
bearer token, a catalog mapping ``external_data_ingest`` for 10 providers) are
started on free loopback ports.  This process is an open-loop load generator:
requests are scheduled at a fixed rate whatever the answers do, and each
latency is measured from its *scheduled* send time, so a server falling behind
shows as latency instead of a slower sender (no coordinated omission).

The events are what Airflow's provider sends (tests/support/openlineage.py):
a third DAG-level COMPLETEs with ``conf.provider`` (recorded, or kept when a
newer time is already there), a third FAILs of tasks (counted once), a third
COMPLETEs of unmapped jobs (unmatched).  The baseline, measured in the same run
at the same rate over the same connections, is ``GET /healthz`` of the same
process: what the exporter's HTTP stack costs with no work at all.

Printed, never asserted: sustained rate (answers per second over the run),
p50/p99/max latency, errors; the goal is the full rate with p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from tests.support.openlineage import run_event

from .services import free_port, redis_server, running

TOKEN = "bench-lineage-token"
PROVIDERS = [f"P{index}" for index in range(10)]


def event(index: int, at: float) -> bytes:
    """The index-th event of the mix: mapped COMPLETE, task FAIL, unmatched COMPLETE."""
    provider = PROVIDERS[index % len(PROVIDERS)]
    conf = {"provider": provider}
    kind = index % 3
    if kind == 0:
        body = run_event("COMPLETE", "external_data_ingest", at, conf=conf)
    elif kind == 1:
        body = run_event(
            "FAIL",
            "external_data_ingest.load",
            at,
            conf=conf,
            task=True,
            error="provider answered 503",
            dag_run_id=f"manual__{index}",
        )
    else:
        body = run_event("COMPLETE", "some_other_dag", at, conf=conf)
    return json.dumps(body).encode()


@contextlib.contextmanager
def exporter(redis_url: str, workdir: Path) -> Iterator[str]:
    catalog = {
        "providers": [
            {
                "name": name,
                "datasets": ["a", "b", "c"],
                "lineage": {"jobs": [{"namespace": "airflow", "name": "external_data_ingest"}]},
            }
            for name in PROVIDERS
        ]
    }
    config = workdir / "exporter.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "catalog": catalog,
                "redis": {"url": redis_url},
                "probes": {"enabled": False},
                "lineage": {"enabled": True},
                "log": {"level": "warning", "format": "json"},
            }
        )
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDGUARD_")}
    env["FEEDGUARD_LINEAGE_BEARER_TOKEN"] = TOKEN
    argv = [sys.executable, "-m", "feedguard.exporter", "--config", str(config)]
    argv += ["--listen", f"127.0.0.1:{port}"]
    with running(argv, workdir / "exporter.log", port, env):
        yield f"http://127.0.0.1:{port}"


@dataclass
class Run:
    name: str
    sent: int
    ok: int
    errors: int
    seconds: float
    latencies: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return (
            ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else 0.0
        )

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


async def load(
    name: str, url: str, bodies: list[bytes] | None, rate: float, seconds: float, connections: int
) -> Run:
    """Open loop: request i is due at start + i / rate; latency counts from then."""
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1

        async def one(index: int) -> None:
            nonlocal errors
            due = start + index / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                if bodies is None:
                    request = session.get(url)
                else:
                    request = session.post(url, data=bodies[index], headers=headers)
                async with request as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(loop.time() - due)

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = loop.time() - start
    return Run(name, total, len(latencies), errors, elapsed, latencies)


def report(run: Run) -> str:
    return (
        f"{run.name:<22} {run.sent:>7} {run.rate:>9.0f} {run.percentile(50):>8.1f} "
        f"{run.percentile(99):>8.1f} {max(run.latencies, default=0) * 1000:>8.1f} {run.errors:>6}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lineage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    total = int(args.rate * args.seconds)
    now = time.time()
    # Event times spread over the last hour: later COMPLETEs move values, earlier ones are kept.
    bodies = [event(i, now - 3600 + 3600 * i / total) for i in range(total)]
    with (
        tempfile.TemporaryDirectory(prefix="feedguard-bench-") as tmp,
        redis_server(Path(tmp)) as redis_url,
        exporter(redis_url, Path(tmp)) as base,
    ):
        lineage_url, health_url = f"{base}/api/v1/lineage", f"{base}/healthz"
        # Warm-up (imports, connections, Lua scripts), then the baseline, then lineage.
        asyncio.run(load("warm-up", lineage_url, bodies, 200, 1, args.connections))
        shape = (args.rate, args.seconds, args.connections)
        runs = [
            asyncio.run(load("baseline GET /healthz", health_url, None, *shape)),
            asyncio.run(load("POST /api/v1/lineage", lineage_url, bodies, *shape)),
        ]
    print(
        f"open loop at {args.rate:.0f} requests/s for {args.seconds:.0f} s over "
        f"{args.connections} connections (latency from the scheduled send time)"
    )
    header = (
        f"{'':<22} {'sent':>7} {'ok/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        print(report(run))
    base_run, lineage = runs
    p99, base_p99 = lineage.percentile(99), max(base_run.percentile(99), 0.001)
    print(
        f"\nsustained {lineage.rate:.0f} events/s "
        f"({lineage.rate / base_run.rate:.2f}x the baseline's rate); "
        f"p99 {p99:.1f} ms ({p99 / base_p99:.1f}x the baseline's p99)"
    )
    print("goal: the full rate with p99 under 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
