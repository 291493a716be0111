"""Checks of a step's params every action makes before planning anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..plugins import ActionError


def check_params(action: str, params: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse a param the action does not take (a typo would otherwise be ignored)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        expected = f"expected: {', '.join(allowed)}" if allowed else "it takes none"
        raise ActionError(f"{action}: unknown parameter(s) {unknown} ({expected})", retryable=False)


def positive_int(action: str, params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ActionError(
            f"{action}: {name} must be a positive integer, got {value!r}", retryable=False
        )
    return value
