"""Shared errors: a configuration's (every problem of one run, one ``source: path: message``
per line) and an HTTP API's failed answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(Exception):
    """Every problem found in one configuration source, one per line."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class DuplicateKeysError(ConfigError):
    """Repeated YAML keys; ``data`` is the document as parsed (last value wins).

    Loaders go on validating ``data`` so one run reports every mistake.
    """

    def __init__(self, errors: Iterable[str], data: Any) -> None:
        super().__init__(errors)
        self.data = data


class HttpAnswerError(Exception):
    """An HTTP API's answer that is not a success, or no answer at all (status 0).

    ``retry_after``: the seconds a 429 or 503 asked the client to wait (its
    ``Retry-After``, see ``retry_after.py``); None when it asked nothing."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}: {detail}" if status else detail)


def join_path(path: str, key: str | int) -> str:
    """``providers`` + 2 -> ``providers[2]``; ``redis`` + ``url`` -> ``redis.url``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key
