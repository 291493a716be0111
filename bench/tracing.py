"""Tracing overhead: the responder's webhook with OpenTelemetry traces on (sampling 1.0
and 0.1) against the same responder with tracing off, measured in the same run.

    .venv/bin/python -m bench.tracing [--requests 1000] [--rounds 4] [--concurrency 16]

Three responders run as in bench/webhook.py (``create_app`` in its own process,
Redis store, dry run, background scheduler), each on its own Redis database so
their inboxes never mix; the traced ones export over OTLP/HTTP to a sink process
that answers as a collector does (200, an empty ExportTraceServiceResponse).
Rounds are interleaved, the order rotating, with the same bodies for every side.
Scenarios: ``resend`` (the webhook span only) and ``all new`` (the webhook span,
an incident update, the steps planned in dry run).  Printed: throughput and p99
as ratios to tracing off.  Figures are printed, never asserted.
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
from collections.abc import Iterator
from pathlib import Path

from .services import free_port, redis_server, running
from .webhook import Result, bodies, drained, load, merged, server

SIDES = {"off": None, "sampling 1.0": 1.0, "sampling 0.1": 0.1}


def serve_sink(port: int) -> None:
    from aiohttp import web

    async def traces(request: web.Request) -> web.Response:
        await request.read()
        # An empty ExportTraceServiceResponse serialises to zero bytes.
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextlib.contextmanager
def sink(workdir: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.tracing", "--sink", "--port", str(port)]
    with running(argv, workdir / "sink.log", port):
        yield f"http://127.0.0.1:{port}/v1/traces"


def _db(redis_url: str, index: int) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{index}"


async def run(requests: int, concurrency: int, rounds: int, redis_url: str, workdir: Path) -> int:
    warmup = max(200, requests // 5)
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(sink(workdir))
        urls: dict[str, tuple[str, str]] = {}
        for index, (side, ratio) in enumerate(SIDES.items()):
            db = _db(redis_url, index + 1)
            tracing = {"enabled": True, "endpoint": endpoint, "sampling_ratio": ratio}
            extra = ["--tracing", json.dumps(tracing)] if ratio is not None else []
            name = f"responder-{index}"
            urls[side] = (stack.enter_context(server("responder", db, workdir, extra, name)), db)
        for url, _ in urls.values():
            await load(url, bodies(warmup, 0, 0), concurrency)
        print(
            f"tracing: {requests} requests x {rounds} rounds per side, concurrency "
            f"{concurrency}, 3 alerts per request, loopback, Redis store, dry run; "
            "ratios to tracing off (throughput counts the scheduler's apply time)"
        )
        offset = 10**6  # bodies unlike the warm-up's
        for scenario, new in (("resend", 0), ("all new", 1)):
            results: dict[str, list[Result]] = {side: [] for side in SIDES}
            for index in range(rounds):
                offset += requests
                round_bodies = bodies(requests, new, offset)
                order = list(SIDES)
                order = order[index % len(order) :] + order[: index % len(order)]
                for side in order:
                    url, db = urls[side]
                    result = await load(url, round_bodies, concurrency)
                    result.drain = await drained(db)
                    results[side].append(result)
            base = merged(results["off"])
            for side in SIDES:
                mine = merged(results[side])
                per_round = [
                    r.throughput_drained / b.throughput_drained
                    for r, b in zip(results[side], results["off"], strict=True)
                ]
                print(
                    f"{scenario:<8} tracing {side:<13} {mine.throughput_drained:7.0f} req/s  "
                    f"p99 {mine.p99 * 1000:6.2f} ms  throughput ratio "
                    f"{mine.throughput_drained / base.throughput_drained:4.2f} (per-round "
                    f"median {statistics.median(per_round):4.2f})  p99 ratio "
                    f"{mine.p99 / base.p99:4.2f}"
                )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sink:
        serve_sink(args.port)
        return 0
    os.environ.setdefault("PYTHONHASHSEED", "0")
    with (
        tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp,
        redis_server(Path(tmp)) as redis_url,
    ):
        return asyncio.run(run(args.requests, args.concurrency, args.rounds, redis_url, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
