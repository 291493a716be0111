"""What both services' command lines share: --config/--listen, loading, serving."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

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
    """A frozen config dataclass with ``listen`` and ``log`` settings."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def listen(self) -> str: ...

    @property
    def log(self) -> _LogSettings: ...


class _Dataclass(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


C = TypeVar("C", bound=_Dataclass)


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
        if listen and "listen" in config.__dataclass_fields__:
            try:
                parse_listen(listen)
            except ValueError as exc:
                raise ConfigError([f"--listen: {exc}"]) from exc
            config = dataclasses.replace(config, listen=listen)
    except ConfigError as exc:
        for line in exc.errors:
            # A value echoed back (a URL with its password) is masked here too.
            print(redact_text(line), file=sys.stderr)
        return None
    return config


def serve(
    config: ListenConfig,
    create_app: Callable[[], web.Application],
    logger_name: str,
    **server_options: Any,
) -> int:
    """Configure logging, build the app and run it on ``config.listen`` until stopped.

    ``server_options`` go to aiohttp's request handler (e.g. ``keepalive_timeout``)."""
    from aiohttp import web

    configure_logging(config.log.level, config.log.format)
    host, port = parse_listen(config.listen)
    get_logger(logger_name).info("starting", listen=config.listen)
    web.run_app(create_app(), host=host, port=port, print=None, access_log=None, **server_options)
    return 0
