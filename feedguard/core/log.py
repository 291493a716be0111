"""structlog set-up shared by both services: JSON to stdout, console on a TTY.

Everything a service prints on stdout goes through the same processors, so
every line is one JSON object and no secret reaches it: structlog's own
loggers, and through the stdlib ``logging`` root handler every third-party
logger (aiohttp, asyncio's "Task exception was never retrieved", slack_sdk,
kubernetes, urllib3, warnings), uncaught exceptions included.  The redaction
step runs last before rendering, on the rendered traceback too: it masks
values under secret-looking keys, credentials inside URLs
(``redis://user:***@host``), Slack tokens, incoming-webhook paths, and every
secret the configuration read (``register_secret``).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]
MASK = "***"

# Keys whose values never reach a log line, whatever a caller binds.
_SECRET_KEYS = frozenset(
    {"token", "password", "authorization", "secret", "api_key", "bot_token", "webhook_url"}
)
# scheme://userinfo@ — the userinfo (user:password, or a bare token) is masked whole.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"<>]+@")
_SLACK_TOKEN = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+")
# Incoming webhooks: https://hooks.slack.com/services/T…/B…/<secret>
_SLACK_WEBHOOK = re.compile(r"(/services/)[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+")
# Shorter values are not masked wherever they occur (a short password would mask
# every occurrence of that word); keys, URL credentials and the patterns still apply.
MIN_SECRET_LENGTH = 8

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# What redact_text iterates: an immutable snapshot replaced (under the lock) on each
# registration, so a line redacted while another thread registers a secret never
# sees the set change under it, and the hot path takes no lock.  Longest first: a
# secret containing another is masked whole.
_secrets_snapshot: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Mask this value wherever it would appear in a log line or a printed error."""
    global _secrets_snapshot
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _secrets_lock:
            if value not in _secrets:
                _secrets.add(value)
                _secrets_snapshot = tuple(sorted(_secrets, key=len, reverse=True))


def redact_text(text: str) -> str:
    """``text`` with URL credentials, Slack tokens and webhook paths and every
    registered secret masked (the patterns first: a registered value inside a token
    must not leave the rest of the token unmatched)."""
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + MASK + "@", text)
    if "xox" in text:
        text = _SLACK_TOKEN.sub(MASK, text)
    if "/services/" in text:
        text = _SLACK_WEBHOOK.sub(r"\1" + MASK, text)
    for secret in _secrets_snapshot:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, BaseException):
        return redact_text(repr(value))
    return value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        lowered = key.lower()
        if lowered in _SECRET_KEYS or lowered.endswith(("_token", "_password", "_secret")):
            event_dict[key] = "[redacted]"
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def trace_id_processor() -> structlog.typing.Processor:
    """Adds ``trace_id`` to a line logged inside a sampled span.  Installed only when
    tracing is on (``configure_logging(trace_ids=True)``): the OpenTelemetry API
    comes with the services' extras, not with the base install (record-success)."""
    from .tracing import current_trace_id

    def add(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        trace_id = current_trace_id()
        if trace_id is not None:
            event_dict.setdefault("trace_id", trace_id)
        return event_dict

    return add


def configure_logging(
    level: str = "info", fmt: LogFormat = "auto", *, trace_ids: bool = False
) -> None:
    """Configure structlog and the stdlib root logger once per process; ``trace_ids``:
    lines logged inside a sampled span carry its ``trace_id``."""
    traced = [trace_id_processor()] if trace_ids else []
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    # Tracebacks become a string first, so the redaction sees them too.
    finish: list[structlog.typing.Processor] = [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        _redact,
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *traced,
            structlog.processors.add_log_level,
            stamp,
            *finish,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            *traced,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *finish,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn → the py.warnings logger → JSON
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_thread


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    logging.getLogger("feedguard").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    logging.getLogger("feedguard").error(
        "uncaught exception in a thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
