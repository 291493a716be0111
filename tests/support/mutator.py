"""A seeded mutator of Alertmanager webhook bodies, for the intake fuzz test.

Each body starts from a valid notification and gets one to three mutations:
structural (a value replaced by something hostile, a key dropped or added,
alerts duplicated) or on the bytes (truncated, bytes flipped or inserted).
Hostile values include what broke the responder before: deep nesting, huge
integer literals, lone surrogates (escaped and raw), invalid UTF-8, NaN.
The same seed gives the same bodies.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

# JSON text spliced in verbatim where a value was: what json.dumps would never write.
RAW_VALUES: list[bytes] = [
    b"[" * 1200 + b"]" * 1200,
    b"[" * 50 + b"]" * 50,
    b'{"a":' * 300 + b"1" + b"}" * 300,
    b"1" * 4301,
    b"-" + b"9" * 400,
    b"18446744073709551616",
    b"1e999",
    b"-1e400",
    b"NaN",
    b"Infinity",
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\\ud83d"',
    b'"\xed\xa0\x80"',
    b'"\xff\xfe"',
    b'"\xc0\xaf"',
    b'"\\u0000"',
    b"0.0000000000000000000000000000001",
    b'"0001-01-01T00:00:00Z"',
    b'"9999-12-31T23:59:59-23:59"',
    b'"2026-13-45T25:61:61Z"',
    b'"2026-01-01T00:00:00+99:99"',
    b'"\xd9\xa2026-01-01T00:00:00Z"',
    b"[]",
    b"{}",
]
PLAIN_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    1.5,
    "",
    "x" * 5_000,
    "firing",
    "resolved",
    "4",
    "\u202e\u0000\ufeff",
    "ExternalDataStale",
    [],
    {},
    {"provider": "FUZZ"},
    [1, 2, 3],
]


_REPEAT_BYTES = 400_000


def base_bodies(start: float) -> list[dict[str, Any]]:
    """Valid notifications whose alerts no playbook acts on (unknown provider, no provider)."""
    from .responder import alert, notification, resolved

    fuzz = alert("FUZZ", starts_at=start)
    bare = alert(None, "FuzzNoProvider", starts_at=start)
    return [
        notification([fuzz]),
        notification([fuzz, bare, alert("FUZZ", "ExternalDataStale", dataset="d")]),
        notification([resolved(fuzz)]),
    ]


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = root
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return root


class Mutator:
    def __init__(self, seed: int, start: float) -> None:
        self.rng = random.Random(seed)
        self.bases = base_bodies(start)
        self.counter = 0

    def body(self) -> tuple[str, bytes]:
        """(the mutations applied, the body)."""
        self.counter += 1
        data = json.loads(json.dumps(self.rng.choice(self.bases)))
        # A fresh startsAt most of the time, so accepted bodies are new transitions.
        for item in data["alerts"]:
            item["startsAt"] = f"2026-09-21T00:00:{self.counter % 60:02d}.{self.counter:06d}Z"
        raws: dict[str, bytes] = {}
        names = []
        for _ in range(self.rng.randint(1, 3)):
            kind = self.rng.choice(("replace", "replace", "raw", "drop", "add", "repeat"))
            names.append(kind)
            data = getattr(self, f"_{kind}")(data, raws)
        text = json.dumps(data, ensure_ascii=self.rng.random() < 0.5).encode("utf-8")
        for marker, raw in raws.items():
            text = text.replace(f'"{marker}"'.encode(), raw)
        if self.rng.random() < 0.25:
            kind = self.rng.choice(("truncate", "flip", "insert"))
            names.append(kind)
            text = getattr(self, f"_{kind}")(text)
        return "+".join(names), text

    def _plain(self) -> Any:
        return copy.deepcopy(self.rng.choice(PLAIN_VALUES))  # never share a list or dict

    def _pick(self, data: Any) -> tuple[Any, ...]:
        """A random node's path, by a random walk down from the root (cheap on big bodies)."""
        path: tuple[Any, ...] = ()
        node = data
        while isinstance(node, dict | list) and node and self.rng.random() < 0.8:
            key = self.rng.choice(list(node) if isinstance(node, dict) else range(len(node)))
            path, node = (*path, key), node[key]
        return path

    def _replace(self, data: Any, raws: dict[str, bytes]) -> Any:
        return _set(data, self._pick(data), self._plain())

    def _raw(self, data: Any, raws: dict[str, bytes]) -> Any:
        marker = f"__raw{len(raws)}__"
        raws[marker] = self.rng.choice(RAW_VALUES)
        return _set(data, self._pick(data), marker)

    def _drop(self, data: Any, raws: dict[str, bytes]) -> Any:
        path = self._pick(data)
        if not path:
            return data
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
        return data

    def _add(self, data: Any, raws: dict[str, bytes]) -> Any:
        path = self._pick(data)
        while path and not isinstance(_get(data, path), dict):
            path = path[:-1]
        target = _get(data, path)
        if not isinstance(target, dict):
            return data
        key = self.rng.choice(["extra", "labels", "\u0000", "fingerprint", "x" * 300, "status"])
        target[key] = self._plain()
        return data

    def _repeat(self, data: Any, raws: dict[str, bytes]) -> Any:
        if isinstance(data, dict) and isinstance(data.get("alerts"), list) and data["alerts"]:
            # Up to ~400 kB: past the test's body limit sometimes, never megabytes to build.
            size = len(json.dumps(data["alerts"]))
            factor = min(self.rng.choice((2, 50, 400)), max(1, _REPEAT_BYTES // size))
            data["alerts"] = data["alerts"] * factor
        return data

    def _truncate(self, text: bytes) -> bytes:
        return text[: self.rng.randrange(len(text) + 1)]

    def _flip(self, text: bytes) -> bytes:
        data = bytearray(text)
        for _ in range(self.rng.randint(1, 8)):
            if data:
                data[self.rng.randrange(len(data))] = self.rng.randrange(256)
        return bytes(data)

    def _insert(self, text: bytes) -> bytes:
        at = self.rng.randrange(len(text) + 1)
        junk = self.rng.choice([b"\xff", b"\x00", b"{", b"]", b'"', b"\\", b",", b"\\ud800"])
        return text[:at] + junk + text[at:]

    def authorization(self, good: bytes) -> bytes | None:
        """Mostly the right header (so bodies reach parsing); sometimes hostile."""
        roll = self.rng.random()
        if roll < 0.9:
            return good
        return self.rng.choice(
            [None, b"Bearer \xff\xfe", good + b"\xc0", b"Basic \xe9", b"Bearer", b"\x7f" * 40]
        )


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        root = root[part]
    return root
