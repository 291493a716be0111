"""``feedguard-exporter``: serve, check-config, record-success."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from feedguard.core.cli import add_version, common_options, load_or_report, serve
from feedguard.core.log import redact_text
from feedguard.core.record import (
    CONFIG_ENV,
    RecordConfig,
    load_record_config,
    record_success,
    sync_client,
)

if TYPE_CHECKING:
    from aiohttp import web


def _parser() -> argparse.ArgumentParser:
    common = common_options(f"YAML settings file (default: ${CONFIG_ENV}, else embedded defaults)")
    parser = argparse.ArgumentParser(
        prog="feedguard-exporter",
        description="Prometheus exporter for external data freshness and provider health.",
        parents=[common],
    )
    add_version(parser)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", parents=[common], help="serve /metrics (the default)")
    sub.add_parser(
        "check-config", parents=[common], help="validate settings and catalog; exit 2 on errors"
    )
    record = sub.add_parser(
        "record-success", parents=[common], help="record a successful load of a dataset"
    )
    record.add_argument("--provider", required=True)
    record.add_argument("--dataset", required=True)
    record.add_argument("--at", type=float, help="epoch seconds (default: now)")
    return parser


def _record_success(config: RecordConfig, args: argparse.Namespace) -> int:
    import redis

    client = sync_client(config)
    try:
        changed = record_success(client, config.providers, args.provider, args.dataset, args.at)
    except ValueError as exc:
        print(f"feedguard-exporter: record-success: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(
            f"feedguard-exporter: record-success: redis: {redact_text(str(exc))}", file=sys.stderr
        )
        return 1
    finally:
        client.close()
    print("recorded" if changed else "kept the newer value already recorded")
    return 0


async def _freeze_gc(app: web.Application) -> None:
    # What start-up built (catalog, label sets, Redis keys) lives as long as the
    # process: keep the cyclic GC from rescanning it during every large scrape.
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV) or None
    if command == "record-success":
        # The catalog and Redis only: a pipeline worker has the base install
        # (no aiohttp) and none of the exporter's other secrets.
        record_config = load_or_report(lambda: load_record_config(path), args)
        return 2 if record_config is None else _record_success(record_config, args)

    from .config import load_config

    config = load_or_report(lambda: load_config(path), args)
    if config is None:
        return 2
    if command == "check-config":
        print(
            f"ok: {len(config.providers.providers)} providers, "
            f"{len(config.providers.datasets())} enabled datasets"
        )
        return 0

    from .app import create_app

    def build() -> web.Application:
        app = create_app(config)
        app.on_startup.append(_freeze_gc)  # runs after the cleanup contexts have built everything
        return app

    return serve(config, build, __name__, trace_ids=config.tracing.enabled)


if __name__ == "__main__":
    sys.exit(main())
