"""The Jinja2 environment the notes render in: sandboxed, Slack-escaped, overridable.

Every ``{{ value }}`` is escaped for Slack's mrkdwn.  Slack treats ``&``, ``<``
and ``>`` as control characters (``<!channel>``, ``<http://x|text>``) and
decodes exactly ``&amp;``, ``&lt;`` and ``&gt;``, so a label value can never
ping a channel or forge a link.  We reuse Jinja's autoescaping (so macros,
includes and ``|safe`` keep their usual meaning) and turn the two quote
entities markupsafe also produces back into quotes: Slack would show them
literally.

Templates are looked up in the configured directory first, then in the ones
shipped with the package, so an operator overrides one note by dropping a file
of the same name there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from feedguard.core.schema import ConfigError

TEMPLATE_NAMES = {
    "initial": "initial.j2",
    "update": "update.j2",
    "resolution": "resolution.j2",
    "verification": "verification.j2",
    "approval": "approval.j2",
}
# Included by the notes (checklist.j2 by resolution.j2, evidence.j2 by initial.j2 and
# update.j2); listed so a broken override is found at start-up.
PARTIALS = ("checklist.j2", "evidence.j2")

TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


def slack_escape(value: object) -> str:
    """Escape text for Slack mrkdwn: only ``&``, ``<`` and ``>``, as Slack documents."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unquote_entities(text: str) -> str:
    # markupsafe escapes quotes too; Slack does not decode those entities.
    return text.replace("&#34;", '"').replace("&#39;", "'")


def format_time(epoch: float | None, tz: ZoneInfo) -> str:
    if epoch is None:
        return "unknown"
    return dt.datetime.fromtimestamp(epoch, tz).strftime(TIME_FORMAT)


def format_duration(seconds: float | None) -> str:
    """``1h 05m``, ``12m``, ``45s``; days for long outages."""
    if seconds is None:
        return "unknown"
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def slack_link(url: object, text: object | None = None) -> Markup:
    """``<url|text>`` with both parts escaped; ``|`` in the URL would end it early."""
    target = quote(str(url), safe=":/?#[]@!$&'()*+,;=%~.-_")
    label = slack_escape(text if text is not None else url)
    return Markup(f"<{slack_escape(target)}|{label}>")


def _key_values(mapping: Mapping[str, Any] | None) -> str:
    if not mapping:
        return ""
    return ", ".join(f"{key}={value}" for key, value in mapping.items())


def build_environment(templates_dir: str | None, tz: ZoneInfo) -> SandboxedEnvironment:
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders.append(jinja2.PackageLoader("feedguard.responder.notes", "templates"))
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        # A misspelt variable is an error (and so a plain fallback note), not a blank.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["time"] = lambda epoch: format_time(epoch, tz)
    env.filters["duration"] = format_duration
    env.filters["link"] = slack_link
    env.filters["kv"] = _key_values
    return env


def render_template(env: SandboxedEnvironment, name: str, context: Mapping[str, Any]) -> str:
    text = env.get_template(name).render(context)
    return _unquote_entities(text).strip()


def check_templates(templates_dir: str | None, tz: ZoneInfo | None = None) -> None:
    """Compile every template (overrides first): a syntax error is a ConfigError."""
    env = build_environment(templates_dir, tz or ZoneInfo("UTC"))
    errors = []
    for name in (*TEMPLATE_NAMES.values(), *PARTIALS):
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or name
            errors.append(f"{where}: line {exc.lineno}: {exc.message}")
        except jinja2.TemplateNotFound:
            errors.append(f"{name}: <file>: template not found")
    if errors:
        raise ConfigError(errors)


def template_source(name: str) -> Path:
    """Where a shipped template lives (for docs and tests)."""
    return Path(__file__).parent / "templates" / name


__all__ = [
    "TEMPLATE_NAMES",
    "build_environment",
    "check_templates",
    "escape",
    "format_duration",
    "format_time",
    "render_template",
    "slack_escape",
    "slack_link",
]
