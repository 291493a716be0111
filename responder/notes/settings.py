"""Settings of the situation notes: the ``notes:`` section of responder.yml.

Delivery is Slack's Web API (``chat.postMessage`` with a bot token: notes are
threaded under the initial one) or, as an alternative without threads, an
incoming-webhook URL.  Both are secrets: give them through the environment
(``FEEDGUARD_NOTES_SLACK_TOKEN``, ``FEEDGUARD_NOTES_WEBHOOK_URL``) or a
``*_file`` setting, never in a committed file.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedguard.core.schema import (
    ConfigError,
    check_http_url,
    check_non_negative,
    check_positive,
    field,
    read_secret,
)

from .templates import check_templates


def _check_timezone(value: Any) -> str | None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown IANA time zone {value!r} (e.g. UTC, Europe/Berlin)"
    return None


def _check_channel(value: Any) -> str | None:
    text = str(value).strip()
    if not text or text == "#" or any(c.isspace() for c in text):
        return f"expected a channel name such as '#data-platform' or an ID, got {value!r}"
    return None


def _check_secret_url(value: Any) -> str | None:
    # Never echo the value: a webhook URL is a credential.
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http(s) URL with a host (value not shown: it is a secret)"
    return None


def _check_directory(value: Any) -> str | None:
    return None if Path(str(value)).is_dir() else f"not a directory: {value!r}"


_SECRETS = ("slack_token", "webhook_url")


@dataclass(frozen=True, repr=False)
class NotesSettings:
    enabled: bool = field(True, doc="false: no notes are posted at all")
    channel: str = field("#data-platform", check=_check_channel, doc="channel name or ID")
    slack_token: str | None = field(
        None, doc="bot token (xoxb-…); prefer FEEDGUARD_NOTES_SLACK_TOKEN or slack_token_file"
    )
    slack_token_file: str | None = None
    webhook_url: str | None = field(
        None,
        check=_check_secret_url,
        doc="incoming webhook (no threads); prefer FEEDGUARD_NOTES_WEBHOOK_URL or webhook_url_file",
    )
    webhook_url_file: str | None = None
    base_url: str = field("https://slack.com/api/", check=check_http_url, doc="Slack Web API")
    templates_dir: str | None = field(
        None, check=_check_directory, doc="templates here override the shipped ones by name"
    )
    update_interval_seconds: float = field(3600.0, check=check_positive, doc="hourly updates")
    timezone: str = field("UTC", check=_check_timezone, doc="time zone of [time] in notes")
    # The resolution note is also shown in the channel, not only in the thread.
    broadcast_resolution: bool = True
    request_timeout_seconds: float = field(10.0, check=check_positive)
    # Retries of one note on 429 / 500 / 503 / connection errors, then the note fails.
    max_retries: int = field(3, check=check_non_negative)
    # A longer Retry-After than this fails the note at once instead of waiting.
    max_retry_after_seconds: float = field(60.0, check=check_non_negative)
    # Upper bound on one note's delivery, retries and waits included.
    post_deadline_seconds: float = field(120.0, check=check_positive)

    def __post_init__(self) -> None:
        token = self.slack_token or self.slack_token_file
        webhook = self.webhook_url or self.webhook_url_file
        if token and webhook:
            raise ValueError(
                "webhook_url: set either slack_token (or slack_token_file) or webhook_url "
                "(or webhook_url_file), not both"
            )

    def __repr__(self) -> str:
        # The config object may end up in a log line or a traceback: mask the secrets.
        parts = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _SECRETS and value is not None:
                value = "[redacted]"
            parts.append(f"{item.name}={value!r}")
        return f"NotesSettings({', '.join(parts)})"

    def validate(self) -> None:
        """What start-up needs beyond the types: readable secret files, compiling templates.

        Raises ConfigError naming the file (and line); ``check-config`` calls it too.
        """
        if not self.enabled:
            return
        self.token()
        self.webhook()
        check_templates(self.templates_dir, self.tz)

    def token(self) -> str | None:
        """The bot token, read from ``slack_token_file`` when that is set."""
        return read_secret(self.slack_token, self.slack_token_file, "Slack bot token") or None

    def webhook(self) -> str | None:
        """The incoming-webhook URL, read from ``webhook_url_file`` when that is set."""
        url = read_secret(self.webhook_url, self.webhook_url_file, "Slack webhook URL") or None
        if url is not None and _check_secret_url(url):
            where = self.webhook_url_file or "notes.webhook_url"
            raise ConfigError([f"{where}: <file>: {_check_secret_url(url)}"])
        return url

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
