"""``feedguard-exporter``: serve, check-config, record-success."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from .config import ExporterConfig, load_config
from .log import configure_logging, get_logger
from .record import CONFIG_ENV, record_success, sync_client
from .schema import ConfigError, parse_listen


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the options work before or after the command without overwriting each other.
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help=f"YAML settings file (default: ${CONFIG_ENV}, else embedded defaults)",
    )
    common.add_argument("--listen", default=argparse.SUPPRESS, help="HOST:PORT to serve on")
    parser = argparse.ArgumentParser(
        prog="feedguard-exporter",
        description="Prometheus exporter for external data freshness and provider health.",
        parents=[common],
    )
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


def _load(args: argparse.Namespace) -> ExporterConfig:
    path = getattr(args, "config", None) or os.environ.get(CONFIG_ENV) or None
    config = load_config(path)
    listen = getattr(args, "listen", None)
    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise ConfigError([f"--listen: {exc}"]) from exc
        config = dataclasses.replace(config, listen=listen)
    return config


def _record_success(config: ExporterConfig, args: argparse.Namespace) -> int:
    import redis

    client = sync_client(config)
    try:
        changed = record_success(client, config.providers, args.provider, args.dataset, args.at)
    except ValueError as exc:
        print(f"feedguard-exporter: record-success: {exc}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"feedguard-exporter: record-success: redis: {exc}", file=sys.stderr)
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
    try:
        config = _load(args)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 2
    if command == "check-config":
        print(
            f"ok: {len(config.providers.providers)} providers, "
            f"{len(config.providers.datasets())} enabled datasets"
        )
        return 0
    if command == "record-success":
        return _record_success(config, args)

    from .app import create_app

    configure_logging(config.log.level, config.log.format)
    host, port = parse_listen(config.listen)
    get_logger(__name__).info("starting", listen=config.listen)
    app = create_app(config)
    app.on_startup.append(_freeze_gc)  # runs after the cleanup contexts have built everything
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
