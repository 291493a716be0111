"""Alertmanager label matchers: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

The grammar is Alertmanager's (``pkg/labels/parse.go``, what ``amtool`` and a
route's ``matchers:`` accept): a label name ``[a-zA-Z_:][a-zA-Z0-9_:]*``, the
operator, and a value that may be double-quoted; inside it ``\\"``, ``\\n`` and
``\\\\`` are escapes, any other backslash is literal, and an unescaped ``"``
anywhere but at both ends is an error. One entry may hold several matchers,
``{a="x", b=~"y"}`` (braces optional, commas outside quotes separate).
Regexes are anchored like Alertmanager's (the whole value must match) and
must be RE2 syntax: the Perl-only constructs Python would accept and Go
rejects (lookaround, backreferences, atomic groups, possessive quantifiers,
conditionals, comments) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# Go's \s is [\t\n\f\r ]; (?s) lets the value span lines, as in Alertmanager.
_S = r"[\t\n\f\r ]*"
_MATCHER_RE = re.compile(
    rf"^{_S}([a-zA-Z_:][a-zA-Z0-9_:]*){_S}(=~|=|!=|!~){_S}(.*?){_S}$", re.DOTALL
)
# What RE2 (Go's regexp) refuses and Python's re accepts.
_PERL_ONLY = (
    ("(?=", "lookahead"),
    ("(?!", "negative lookahead"),
    ("(?<=", "lookbehind"),
    ("(?<!", "negative lookbehind"),
    ("(?>", "atomic group"),
    ("(?(", "conditional"),
    ("(?P=", "named backreference"),
    ("(?#", "comment group"),
)

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


def _unquote(raw: str, shown: str) -> str:
    """The value as Alertmanager unescapes it (``shown`` is the text for errors)."""
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    value: list[str] = []
    escaped = False
    for i, char in enumerate(raw):
        if escaped:
            escaped = False
            value.append({"n": "\n", '"': '"', "\\": "\\"}.get(char, "\\" + char))
        elif char == "\\":
            if i < len(raw) - 1:
                escaped = True
            else:
                value.append("\\")  # a last backslash is literal
        elif char == '"':
            if not quoted or i < len(raw) - 1:
                raise ValueError(f"matcher value contains unescaped double quote: {shown}")
            quoted = False
        else:
            value.append(char)
    if quoted:
        raise ValueError(f"matcher value contains unescaped double quote: {shown}")
    return "".join(value)


def _re2_problem(pattern: str) -> str | None:
    """The first construct RE2 would refuse, outside character classes."""
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            following = pattern[i + 1 : i + 2]
            if not in_class and following.isdigit() and following != "0":
                return f"backreference \\{following}"
            if following in ("g", "Z"):
                return f"\\{following} (not RE2 syntax)"
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                i += 1  # a leading ] is literal
        else:
            for prefix, what in _PERL_ONLY:
                if pattern.startswith(prefix, i):
                    return f"{what} {prefix}…"
            if char in "*+?}" and pattern[i + 1 : i + 2] == "+":
                return f"possessive quantifier {char}+"
        i += 1
    return None


def parse_matcher(text: str) -> Matcher:
    found = _MATCHER_RE.match(text)
    if not found:
        raise ValueError(
            f'bad matcher format, expected name="value", name!="value", name=~"re"'
            f' or name!~"re": {text!r}'
        )
    name, op, raw = found.groups()
    value = _unquote(raw, raw)
    regex = None
    if op in ("=~", "!~"):
        problem = _re2_problem(value)
        if problem:
            raise ValueError(f"invalid regex {value!r}: {problem} is not supported by Alertmanager")
        try:
            # Go's \z is Python's \Z (end of text).
            regex = re.compile(value.replace("\\z", "\\Z"))
        except re.error as exc:
            raise ValueError(f"invalid regex {value!r}: {exc}") from exc
    return Matcher(name, op, value, regex)  # type: ignore[arg-type]  # op is one of the four


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """One ``matchers:`` entry: ``a="x", b="y"``, braces optional (Alertmanager's ParseMatchers)."""
    body = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside = escaped = False
    for char in body:
        if char == "," and not inside:
            tokens.append("".join(token))
            token = []
            continue
        if char == '"':
            if escaped:
                escaped = False
            else:
                inside = not inside
        elif char == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(char)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return tuple(parse_matcher(t) for t in tokens)
