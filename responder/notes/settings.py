"""Settings of the situation notes: the ``notes:`` section of responder.yml.

Delivery is Slack's Web API (``chat.postMessage`` with a bot token: notes are
threaded under the initial one) or, as an alternative without threads, an
incoming-webhook URL.  Both are secrets: give them through the environment
(``FEEDGUARD_NOTES_SLACK_TOKEN``, ``FEEDGUARD_NOTES_WEBHOOK_URL``) or a
``*_file`` setting, never in a committed file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from feedguard.core.schema import (
    ConfigError,
    ConfigModel,
    HttpUrl,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Secret,
    check,
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


class NotesSettings(ConfigModel):
    enabled: bool = Field(True, description="false: no notes are posted at all")
    channel: Annotated[str, check(_check_channel)] = Field(
        "#data-platform", description="channel name or ID"
    )
    slack_token: Secret = Field(
        None,
        description="bot token (xoxb-…); prefer FEEDGUARD_NOTES_SLACK_TOKEN or slack_token_file",
    )
    slack_token_file: str | None = None
    webhook_url: Annotated[Secret, check(_check_secret_url)] = Field(
        None,
        description="incoming webhook (no threads); "
        "prefer FEEDGUARD_NOTES_WEBHOOK_URL or webhook_url_file",
    )
    webhook_url_file: str | None = None
    base_url: HttpUrl = Field("https://slack.com/api/", description="Slack Web API")
    templates_dir: Annotated[str | None, check(_check_directory)] = Field(
        None, description="templates here override the shipped ones by name"
    )
    update_interval_seconds: PositiveFloat = Field(3600.0, description="hourly updates")
    timezone: Annotated[str, check(_check_timezone)] = Field(
        "UTC", description="time zone of [time] in notes"
    )
    # The resolution note is also shown in the channel, not only in the thread.
    broadcast_resolution: bool = True
    request_timeout_seconds: PositiveFloat = 10.0
    # Retries of one note on 429 / 500 / 503 / connection errors, then the note fails.
    max_retries: NonNegativeInt = 3
    # A longer Retry-After than this fails the note at once instead of waiting.
    max_retry_after_seconds: NonNegativeFloat = 60.0
    # Upper bound on one note's delivery, retries and waits included.
    post_deadline_seconds: PositiveFloat = 120.0

    @model_validator(mode="after")
    def _one_delivery(self) -> NotesSettings:
        token = self.slack_token or self.slack_token_file
        webhook = self.webhook_url or self.webhook_url_file
        if token and webhook:
            raise ValueError(
                "webhook_url: set either slack_token (or slack_token_file) or webhook_url "
                "(or webhook_url_file), not both"
            )
        return self

    def check_startup(self) -> None:
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
