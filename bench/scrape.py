"""Scrape benchmark: the exporter's /metrics against prometheus-client's generate_latest.

    .venv/bin/python -m bench.scrape [--sizes 1000 10000] [--runs 21]

For each catalog size a real ``redis-server`` (started here on a free loopback
port) holds a last-success timestamp for most datasets and a status for every
provider.  The exporter (``create_app``, probes off, behind a real loopback
HTTP server) is scraped end to end: HTTP request, one MGET, building the
families, rendering, reading the body.  The baseline, measured in the same run
and interleaved with it, is ``generate_latest`` of a private registry holding
prometheus-client Gauges populated in-process with exactly the series the
exporter serves (same names, labels and values, same process collectors), so
the ratio is the exporter's whole cost over the library's rendering alone.  A
second ratio is against the timestamp Gauge alone, for reference.

Resident memory is that of a real ``feedguard-exporter`` process serving the
10,000-dataset catalog after a few scrapes (``VmRSS`` and peak ``VmHWM`` from
``/proc``).  Figures are printed, never asserted: goals are within 1.5x of the
baseline and under 100 MB resident at 10,000 datasets.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Gauge,
    generate_latest,
)

from feedguard.core.catalog import Catalog, parse_catalog
from feedguard.core.log import configure_logging
from feedguard.core.settings import RedisSettings
from feedguard.exporter.app import create_app
from feedguard.exporter.config import ExporterConfig, ProbeSettings
from feedguard.exporter.lineage.settings import LineageSettings

from .services import free_port, redis_server, wait_for_port

PROVIDERS = 10
MISSING_EVERY = 20  # one dataset in 20 has no key yet: both code paths run
STATUSES = ("up", "degraded", "down", "unknown")


def catalog_data(datasets: int) -> dict[str, Any]:
    per_provider = datasets // PROVIDERS
    return {
        "providers": [
            {"name": f"P{p}", "datasets": [f"dataset_{p}_{d:05d}" for d in range(per_provider)]}
            for p in range(PROVIDERS)
        ]
    }


def populate(client: redis.Redis, catalog: Catalog) -> dict[tuple[str, str], float]:
    """Timestamps for most datasets, a status per provider; what was written."""
    client.flushdb()
    stamps: dict[tuple[str, str], float] = {}
    mapping: dict[str, str] = {}
    for index, (name, dataset) in enumerate(catalog.datasets()):
        if index % MISSING_EVERY == 0:
            continue
        stamps[name, dataset] = 1_700_000_000.0 + index + 0.25
        mapping[f"external:last_success:{name}:{dataset}"] = repr(stamps[name, dataset])
    for index, provider in enumerate(catalog.enabled):
        status = STATUSES[index % 3]
        mapping[f"external:provider_status:{provider.name}"] = f'{{"status": "{status}"}}'
    client.mset(mapping)
    return stamps


def baseline_registries(
    catalog: Catalog, stamps: dict[tuple[str, str], float]
) -> tuple[CollectorRegistry, CollectorRegistry]:
    """(every series the exporter serves, the timestamp series alone) as client Gauges."""
    full = CollectorRegistry(auto_describe=False)
    only = CollectorRegistry(auto_describe=False)
    last = Gauge(
        "external_data_last_success_timestamp",
        "Epoch seconds of the last successful load of a dataset.",
        ["provider", "dataset"],
        registry=full,
    )
    alone = Gauge(
        "external_data_last_success_timestamp",
        "Epoch seconds of the last successful load of a dataset.",
        ["provider", "dataset"],
        registry=only,
    )
    recorded = Gauge(
        "external_data_last_success_recorded",
        "1 when a last success is recorded for a catalog dataset, 0 when none is yet.",
        ["provider", "dataset"],
        registry=full,
    )
    for name, dataset in catalog.datasets():
        stamp = stamps.get((name, dataset))
        recorded.labels(name, dataset).set(0.0 if stamp is None else 1.0)
        if stamp is not None:
            last.labels(name, dataset).set(stamp)
            alone.labels(name, dataset).set(stamp)
    status = Gauge("external_provider_status", "status", ["provider", "status"], registry=full)
    sla = Gauge("external_provider_freshness_sla_seconds", "sla", ["provider"], registry=full)
    for index, provider in enumerate(catalog.enabled):
        for candidate in STATUSES:
            status.labels(provider.name, candidate).set(float(candidate == STATUSES[index % 3]))
        sla.labels(provider.name).set(provider.freshness_sla_seconds)
    up = Gauge("external_exporter_collector_up", "up", ["collector"], registry=full)
    took = Gauge(
        "external_exporter_collector_duration_seconds", "took", ["collector"], registry=full
    )
    up.labels("redis").set(1)
    took.labels("redis").set(0.001)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        full.register(collector)
    return full, only


def series_count(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


@dataclasses.dataclass
class Result:
    datasets: int
    exporter_ms: float
    baseline_ms: float
    timestamps_only_ms: float
    exporter_series: int
    baseline_series: int
    # The same exporter with the OpenLineage intake on (no event posted): what
    # merely having the feature costs a scrape.  Off (the default), it adds no
    # route, collector or series: ``features_off_clean`` checks the exposition.
    lineage_on_ms: float
    features_off_clean: bool


async def measure(size: int, redis_url: str, runs: int) -> Result:
    catalog = parse_catalog(catalog_data(size), "<bench>")
    client = redis.Redis.from_url(redis_url)
    stamps = populate(client, catalog)
    client.close()
    full, only = baseline_registries(catalog, stamps)
    config = ExporterConfig(catalog=catalog).model_copy(
        update={"redis": RedisSettings(url=redis_url), "probes": ProbeSettings(enabled=False)}
    )
    lineage_on = config.model_copy(
        update={"lineage": LineageSettings(enabled=True, bearer_token="bench")}
    )
    async with (
        TestClient(TestServer(create_app(config))) as http,
        TestClient(TestServer(create_app(lineage_on))) as http_on,
    ):

        async def scrape(client: TestClient[Any, Any] = http) -> bytes:
            response = await client.get("/metrics")
            response.raise_for_status()
            return await response.read()

        body = await scrape()
        clean = b"external_lineage" not in body and b"external_consumer" not in body
        clean = clean and (await http.post("/api/v1/lineage")).status == 404
        exporter_series = series_count(body)
        baseline_series = series_count(generate_latest(full))
        exporter_times: list[float] = []
        baseline_times: list[float] = []
        alone_times: list[float] = []
        on_times: list[float] = []
        for run in range(runs + 2):  # two warm-up rounds, then interleaved samples
            started = time.perf_counter()
            await scrape()
            exporter = time.perf_counter() - started
            started = time.perf_counter()
            await scrape(http_on)
            on = time.perf_counter() - started
            started = time.perf_counter()
            generate_latest(full)
            baseline = time.perf_counter() - started
            started = time.perf_counter()
            generate_latest(only)
            alone = time.perf_counter() - started
            if run >= 2:
                on_times.append(on)
                exporter_times.append(exporter)
                baseline_times.append(baseline)
                alone_times.append(alone)
    return Result(
        size,
        statistics.median(exporter_times) * 1000,
        statistics.median(baseline_times) * 1000,
        statistics.median(alone_times) * 1000,
        exporter_series,
        baseline_series,
        statistics.median(on_times) * 1000,
        clean,
    )


def resident_memory(size: int, redis_url: str, workdir: Path) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB of a real exporter process serving ``size`` datasets."""
    import yaml

    catalog_file = workdir / f"catalog-{size}.yml"
    catalog_file.write_text(yaml.safe_dump(catalog_data(size)))
    client = redis.Redis.from_url(redis_url)
    populate(client, parse_catalog(catalog_data(size), "<bench>"))
    client.close()
    port = free_port()
    env = {
        **os.environ,
        "FEEDGUARD_CATALOG_FILE": str(catalog_file),
        "FEEDGUARD_REDIS_URL": redis_url,
        "FEEDGUARD_PROBES_ENABLED": "false",
        "FEEDGUARD_LISTEN": f"127.0.0.1:{port}",
        "FEEDGUARD_LOG_LEVEL": "warning",
    }
    env.pop("FEEDGUARD_EXPORTER_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "feedguard.exporter", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        for _ in range(5):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as reply:
                reply.read()
        status = Path(f"/proc/{process.pid}/status").read_text()
    finally:
        process.terminate()
        process.wait(10)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return (
        int(fields["VmRSS"].split()[0]) / 1024,
        int(fields["VmHWM"].split()[0]) / 1024,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scrape", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=21, help="timed scrapes per size (median)")
    args = parser.parse_args(argv)
    configure_logging("warning", "console")  # the table, not start-up lines

    with (
        tempfile.TemporaryDirectory(prefix="feedguard-bench-") as tmp,
        redis_server(Path(tmp)) as redis_url,
    ):
        results = [asyncio.run(measure(size, redis_url, args.runs)) for size in args.sizes]
        rss, peak = resident_memory(max(args.sizes), redis_url, Path(tmp))

    print(f"scrape time, median of {args.runs} runs (baseline measured in the same run)")
    header = (
        f"{'datasets':>9} {'series':>7} {'exporter ms':>12} {'baseline ms':>12} "
        f"{'ratio':>6} {'ts-only ms':>11} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        same = "" if r.exporter_series == r.baseline_series else " (series differ!)"
        print(
            f"{r.datasets:>9} {r.exporter_series:>7} {r.exporter_ms:>12.1f} "
            f"{r.baseline_ms:>12.1f} {r.exporter_ms / r.baseline_ms:>5.2f}x "
            f"{r.timestamps_only_ms:>11.1f} {r.exporter_ms / r.timestamps_only_ms:>5.2f}x{same}"
        )
    print(
        "\nlineage intake and consumer probes off (the default): "
        + (
            "no route (404), no collector, no external_lineage_*/external_consumer_* series"
            if all(r.features_off_clean for r in results)
            else "A LINEAGE ROUTE OR SERIES IS PRESENT"
        )
    )
    for r in results:
        print(
            f"lineage intake on (idle) at {r.datasets} datasets: {r.lineage_on_ms:.1f} ms, "
            f"{r.lineage_on_ms / r.exporter_ms:.2f}x the scrape with it off"
        )
    print(
        f"\nresident memory of feedguard-exporter at {max(args.sizes)} datasets: "
        f"{rss:.1f} MB (peak {peak:.1f} MB)"
    )
    print("goals: ratio <= 1.50x against the same series; < 100 MB resident")
    return 0


if __name__ == "__main__":
    sys.exit(main())
