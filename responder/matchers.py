"""Alertmanager-style label matchers: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

Regexes are anchored like Alertmanager's (the whole value must match).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

_MATCHER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")

Op = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        # A missing label matches like the empty string, as in Alertmanager.
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None  # set by parse_matcher for regex operators
        hit = self.regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit


def parse_matcher(text: str) -> Matcher:
    found = _MATCHER_RE.match(text)
    if not found:
        raise ValueError(
            f'expected name="value", name!="value", name=~"re" or name!~"re": {text!r}'
        )
    name, op, raw = found.groups()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(raw)
        except re.error as exc:
            raise ValueError(f"invalid regex {raw!r}: {exc}") from exc
    return Matcher(name, op, raw, regex)  # type: ignore[arg-type]  # op is one of the four
