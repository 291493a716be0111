"""Pure functions over workload log text: error lines, secrets redacted, bounded.

Applied to what ``GET .../pods/{pod}/log?timestamps=true`` returns: one line per
entry, an RFC 3339 timestamp first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from feedguard.core.kube import parse_time

_ERROR = re.compile(
    r"\b(ERROR|FATAL|CRITICAL|PANIC|SEVERE)\b"
    r"|\"level\"\s*:\s*\"(error|fatal|critical|panic)\""
    r"|\blevel=(error|fatal|critical|panic)\b"
    r"|Traceback \(most recent call last\)"
    r"|\b[A-Z]\w*(Error|Exception)\b|\bexception\b",
    re.IGNORECASE,
)
_MASK = "***"
# (pattern, replacement): credentials as they show up in log lines.
_SECRETS = [
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(\w+\s+)?[^\s,;\"']+"), r"\1\2" + _MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + _MASK),
    # key=value / "key": "value" for secret-looking keys.
    (
        re.compile(
            r"(?i)([\"']?\b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|"
            r"access[_-]?key|private[_-]?key|credential)s?[\"']?\s*[:=]\s*[\"']?)"
            r"[^\s\"',;&}]+"
        ),
        r"\1" + _MASK,
    ),
    # user:password@ in URLs.
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + _MASK + "@"),
    # Credentials in query strings.
    (
        re.compile(r"(?i)([?&](?:api_key|apikey|key|token|access_token|sig|signature)=)[^&\s\"']+"),
        r"\1" + _MASK,
    ),
    # JSON Web Tokens anywhere.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}"), _MASK),
]


def redact(line: str) -> str:
    for pattern, replacement in _SECRETS:
        line = pattern.sub(replacement, line)
    return line


def is_error(line: str) -> bool:
    return _ERROR.search(line) is not None


@dataclass(frozen=True)
class ErrorLine:
    at: float | None
    text: str


def split_timestamp(line: str) -> tuple[float | None, str]:
    stamp, sep, rest = line.partition(" ")
    if sep:
        at = parse_time(stamp) if stamp[:1].isdigit() and "T" in stamp else None
        if at is not None:
            return at, rest
    return None, line


def error_lines(text: str, max_chars: int) -> list[ErrorLine]:
    """Every error line of ``text``, redacted, cut to ``max_chars``, oldest first."""
    found = []
    for raw in text.splitlines():
        at, line = split_timestamp(raw.rstrip("\r"))
        if not is_error(line):
            continue
        clean = redact(line)
        if len(clean) > max_chars:
            clean = clean[: max_chars - 1] + "…"
        found.append(ErrorLine(at, clean))
    return found
