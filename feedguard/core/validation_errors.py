"""pydantic's validation errors as ``source: path.to.key: what is wrong`` lines.

The wording is the project's own, kept from the hand-written loader the
services had before pydantic (docs and tests quote it): "expected true or
false, got str 'yes'", "required", "unknown key (expected one of: ...)".
Paths are written as in the file, list items by index: ``providers[2].datasets``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .errors import join_path

_EXPECTED = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
    "iterable_type": "a list",
    "dict_type": "a mapping",
    "mapping_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


class SecretMark:
    """``Annotated`` marker of a secret: ``[redacted]`` in a repr, never echoed in an error."""


def describe(value: Any) -> str:
    """A value as error messages show it: ``str 'yes'``, ``a mapping``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, _Hidden):
        return repr(value)
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def describe_errors(
    exc: ValidationError, root: type[BaseModel], source: str, origins: Mapping[str, str]
) -> list[str]:
    lines = []
    for error in _unknown_keys_first(exc.errors(include_url=False)):
        path, message = _message(error, root)
        if error["type"] == "value_error" and "error" in error.get("ctx", {}):
            # Checks across fields raise ValueError("key: message"), one per line.
            for line in str(error["ctx"]["error"]).splitlines():
                key, _, text = line.partition(": ")
                where = join_path(path, key) if text else path
                lines.append(_line(source, origins, where, text or line))
            continue
        lines.append(_line(source, origins, path, message))
    return lines


def _unknown_keys_first(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """Each section's unknown keys before its other errors (as a reader fixes them)."""
    ordered = [e for e in errors if e["type"] != "extra_forbidden"]
    for extra in reversed([e for e in errors if e["type"] == "extra_forbidden"]):
        parent = extra["loc"][:-1]
        at = next(
            (i for i, e in enumerate(ordered) if e["loc"][: len(parent)] == parent), len(ordered)
        )
        ordered.insert(at, extra)
    return ordered


def _line(source: str, origins: Mapping[str, str], path: str, message: str) -> str:
    return f"{origin_of(path, origins, source)}: {path or '<root>'}: {message}"


def origin_of(path: str, origins: Mapping[str, str], source: str) -> str:
    """Where the value at ``path`` came from: the longest overridden path that contains it."""
    probe = path
    while True:
        if probe in origins:
            return origins[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            return source
        probe = probe[:cut]


def _message(error: ErrorDetails, root: type[BaseModel]) -> tuple[str, str]:
    kind = error["type"]
    value = error["input"]
    ctx = error.get("ctx", {})
    loc = error["loc"]
    if loc and loc[-1] == "[key]":
        path, _, _ = _locate(root, loc[:-2])
        return join_path(path, str(loc[-2])), "keys must be strings"
    path, tp, secret = _locate(root, loc)
    if secret:
        value = _Hidden(value)
    if kind == "missing":
        return path, "required"
    if kind == "extra_forbidden":
        _, parent, _ = _locate(root, loc[:-1])
        names = sorted(parent.model_fields) if _is_model(parent) else []
        return path, f"unknown key (expected one of: {', '.join(names)})"
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).rsplit(" or ", 1)
        return path, f"expected one of {', '.join(choices)}, got {describe(value)}"
    if kind in _EXPECTED:
        return path, f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind in ("greater_than", "greater_than_equal"):
        shown = float(value) if tp is float and isinstance(value, int) else value
        bound = f"{ctx.get('gt', ctx.get('ge')):g}"
        if kind == "greater_than":
            return path, f"must be greater than {bound}, got {shown!r}"
        if bound == "0":
            return path, f"must not be negative, got {shown!r}"
        return path, f"must be at least {bound}, got {shown!r}"
    return path, error["msg"]


class _Hidden:
    """A secret's value in an error: its type, never the value."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__

    def __repr__(self) -> str:
        return f"(a {self.kind}, not shown: it is a secret)"


def _locate(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, Any, bool]:
    """The written path of ``loc``, the type found there and whether it is a secret."""
    path = ""
    tp: Any = root
    secret = False
    for part in loc:
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if _is_model(tp):
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field is not None else Any
            secret = field is not None and any(isinstance(m, SecretMark) for m in field.metadata)
            path = join_path(path, str(part))
        elif origin in (tuple, list) and isinstance(part, int):
            tp = get_args(tp)[0]
            path = join_path(path, part)
        elif origin in (dict, Mapping) or tp is dict:
            args = get_args(tp)
            tp = args[1] if args else Any
            path = join_path(path, str(part))
        else:
            tp = Any
            path = join_path(path, part if isinstance(part, int) else str(part))
    return path, _unwrap(tp), secret


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` as ``X``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in get_args(tp) if a is not type(None)]
            if len(inner) != 1:
                return tp
            tp = inner[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)
