"""What both services' command lines share: --config/--listen, loading, serving."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from .build import version_text
from .log import LogFormat, configure_logging, get_logger, redact_text
from .schema import ConfigError, parse_listen

if TYPE_CHECKING:  # aiohttp is the services' dependency, not record-success's
    from aiohttp import web


class _LogSettings(Protocol):
    @property
    def level(self) -> str: ...

    @property
    def format(self) -> LogFormat: ...


class ListenConfig(Protocol):
    """A service's frozen config with ``listen`` and ``log`` settings."""

    @property
    def listen(self) -> str: ...

    @property
    def log(self) -> _LogSettings: ...


C = TypeVar("C", bound=BaseModel)


def common_options(config_help: str) -> argparse.ArgumentParser:
    """The options every command takes, as a parent parser."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the options work before or after the command without overwriting each other.
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    common.add_argument("--listen", default=argparse.SUPPRESS, help="HOST:PORT to serve on")
    return common


def add_version(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--version``: the installed version (what ``feedguard_build_info`` says too)."""
    parser.add_argument("--version", action="version", version=version_text(parser.prog))
    return parser


def load_or_report(load: Callable[[], C], args: argparse.Namespace) -> C | None:
    """``load()`` with ``--listen`` applied; None after printing every error to stderr."""
    try:
        config = load()
        listen = getattr(args, "listen", None)
        if listen and "listen" in type(config).model_fields:
            try:
                parse_listen(listen)
            except ValueError as exc:
                raise ConfigError([f"--listen: {exc}"]) from exc
            config = config.model_copy(update={"listen": listen})
    except ConfigError as exc:
        for line in exc.errors:
            # A value echoed back (a URL with its password) is masked here too.
            print(redact_text(line), file=sys.stderr)
        return None
    return config


class StartupError(Exception):
    """What keeps a service from starting (a port in use, a store it cannot open);
    ``serve`` prints it as one line and exits 2."""


def bind(listen: str) -> socket.socket:
    """A listening socket on ``listen``; StartupError when the address cannot be had."""
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise StartupError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    return sock


def serve(
    config: ListenConfig,
    create_app: Callable[[], web.Application],
    logger_name: str,
    *,
    trace_ids: bool = False,
    **server_options: Any,
) -> int:
    """Configure logging, bind ``config.listen``, build the app and run it until stopped.

    The port is bound before anything starts, so a port in use is one line on
    stderr and exit 2, not a traceback after start-up logged its progress.
    ``server_options`` go to aiohttp's request handler (e.g. ``keepalive_timeout``);
    ``trace_ids``: tracing is on, log lines inside a sampled span carry its trace_id."""
    from aiohttp import web

    configure_logging(config.log.level, config.log.format, trace_ids=trace_ids)
    try:
        sock = bind(config.listen)
        get_logger(logger_name).info("starting", listen=config.listen)
        web.run_app(create_app(), sock=sock, print=None, access_log=None, **server_options)
    except StartupError as exc:
        # feedguard.exporter.__main__ -> feedguard-exporter
        service = "-".join(logger_name.split(".")[:2])
        print(f"{service}: {exc}", file=sys.stderr)
        return 2
    return 0
