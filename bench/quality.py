"""GX store scan benchmark: the quality collector's per-scrape cost against history size.

    .venv/bin/python -m bench.quality [--names 300 3000 9000] [--runs 201]

For each size a validations store is written to a temporary folder the way
GX 0.x's run-name templates fill it: one suite, every run under its own run
name (``<suite>/<run name>/<run time>/<batch>.json``), all settled. After a
first scan (which lists everything once), the steady-state scan that every
scrape does is timed, interleaved across sizes, and reported as the median
and as a ratio to the smallest store measured in the same run. Goal: the
ratio stays near 1.0x (the cost does not grow with the number of run names).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedguard.core.gx_results import ValidationStore

RESULT = {
    "success": True,
    "statistics": {"evaluated_expectations": 3, "unsuccessful_expectations": 0},
    "suite_name": "external_dbt_outputs",
    "meta": {},
}

START = datetime(2026, 1, 1, tzinfo=UTC)


def build(root: Path, names: int) -> None:
    body = json.dumps(RESULT)
    for i in range(names):
        run_time = (START + timedelta(minutes=i)).strftime("%Y%m%dT%H%M%S.%fZ")
        folder = root / "external_dbt_outputs" / f"run-{i:06d}" / run_time
        folder.mkdir(parents=True)
        (folder / "warehouse-external_outputs.json").write_text(body)
    settled = time.time() - 60
    for path, _, _ in os.walk(root):
        os.utime(path, (settled, settled))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, nargs="+", default=[300, 3000, 9000])
    parser.add_argument("--runs", type=int, default=201)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="feedguard-bench-gx-") as tmp:
        stores: dict[int, ValidationStore] = {}
        for size in args.names:
            root = Path(tmp) / str(size)
            build(root, size)
            stores[size] = ValidationStore(root)
            stores[size].scan()
        timings: dict[int, list[float]] = {size: [] for size in args.names}
        for _ in range(args.runs):
            for size, store in stores.items():
                start = time.perf_counter()
                store.scan()
                timings[size].append(time.perf_counter() - start)
        base = statistics.median(timings[args.names[0]])
        print(f"{'run names':>10} {'scan ms':>9} {'ratio':>6} {'dirs stat-ed/scan':>18}")
        for size, store in stores.items():
            median = statistics.median(timings[size])
            before = store.stats
            store.scan()
            print(
                f"{size:>10} {median * 1e3:>9.3f} {median / base:>5.2f}x {store.stats - before:>18}"
            )
    print(f"goal: ratio near 1.0x against {args.names[0]} run names (cost independent of history)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
