"""Typed configuration loading shared by both services.

Configuration is described by frozen dataclasses.  ``load_dataclass`` walks a
parsed YAML document against those types, collects *every* mistake as
``file: path.to.key: what is wrong`` and only returns an object when there is
none, so a service never starts on half-valid settings.

Field-level rules live in ``dataclasses.field(metadata=...)``:

- ``check``: a callable returning an error message or ``None``;
- ``env``: ``False`` to keep a field out of ``FEEDGUARD_*`` overrides;
- ``doc``: one line shown by ``--help-config`` style listings.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml

T = TypeVar("T")

ENV_PREFIX = "FEEDGUARD_"


class ConfigError(Exception):
    """Every problem found in one configuration source, one per line."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{self.source}: {path or '<root>'}: {message}")


# --- YAML ---------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            first = seen[key].start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first defined on line {first})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors and duplicate keys become ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: <file>: cannot read: {exc.strerror or exc}"]) from exc
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "<file>"
        raise ConfigError([f"{source}: {where}: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: <file>: {exc}"]) from exc


# --- field checks -------------------------------------------------------------


def check_http_url(value: Any) -> str | None:
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http(s) URL with a host, got {value!r}"
    return None


def check_redis_url(value: Any) -> str | None:
    parts = urlsplit(str(value))
    if parts.scheme not in ("redis", "rediss", "unix"):
        return f"expected a redis://, rediss:// or unix:// URL, got {value!r}"
    return None


def check_positive(value: Any) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value!r}"


def check_non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must not be negative, got {value!r}"


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(value: Any) -> str | None:
    """Names end up in Redis keys (``:``-separated) and label values."""
    if not _NAME_RE.match(str(value)):
        return f"must be letters, digits, '_', '.' or '-' (no ':' or spaces), got {value!r}"
    return None


def check_listen(value: Any) -> str | None:
    try:
        parse_listen(str(value))
    except ValueError as exc:
        return str(exc)
    return None


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def field(
    default: Any = dataclasses.MISSING,
    *,
    check: Callable[[Any], str | None] | None = None,
    env: bool = True,
    doc: str = "",
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """``dataclasses.field`` with the metadata this module understands."""
    meta = {"check": check, "env": env, "doc": doc}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --- loading ------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Invalid(Exception):
    pass


def _convert(tp: Any, value: Any, path: str, problems: _Problems) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, path, problems)
        raise TypeError(f"unsupported union {tp}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            problems.add(path, f"expected one of {choices}, got {_describe(value)}")
            raise _Invalid
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            problems.add(path, f"expected a list, got {_describe(value)}")
            raise _Invalid
        item_type = args[0]
        items = []
        ok = True
        for index, item in enumerate(value):
            try:
                items.append(_convert(item_type, item, _join(path, index), problems))
            except _Invalid:
                ok = False
        if not ok:
            raise _Invalid
        return tuple(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            problems.add(path, f"expected a mapping, got {_describe(value)}")
            raise _Invalid
        value_type = args[1] if args else Any
        result = {}
        ok = True
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add(_join(path, str(key)), "keys must be strings")
                ok = False
                continue
            try:
                result[key] = _convert(value_type, item, _join(path, key), problems)
            except _Invalid:
                ok = False
        if not ok:
            raise _Invalid
        return types.MappingProxyType(result)
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _load(tp, value, path, problems)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.add(path, f"expected a number, got {_describe(value)}")
            raise _Invalid
        return float(value)
    if tp in (str, int, bool):
        if isinstance(value, bool) != (tp is bool) or not isinstance(value, tp):
            problems.add(path, f"expected {_TYPE_NAMES[tp]}, got {_describe(value)}")
            raise _Invalid
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def _load(cls: type[T], data: Any, path: str, problems: _Problems) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.add(path, f"expected a mapping, got {_describe(data)}")
        raise _Invalid
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    for key in unknown:
        expected = ", ".join(sorted(fields))
        problems.add(_join(path, str(key)), f"unknown key (expected one of: {expected})")
    values: dict[str, Any] = {}
    ok = not unknown
    for name, fld in fields.items():
        sub = _join(path, name)
        if name not in data:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                problems.add(sub, "required")
                ok = False
            continue
        try:
            value = _convert(hints[name], data[name], sub, problems)
        except _Invalid:
            ok = False
            continue
        check = fld.metadata.get("check")
        if check is not None and value is not None:
            message = check(value)
            if message:
                problems.add(sub, message)
                ok = False
                continue
        values[name] = value
    if not ok:
        raise _Invalid
    try:
        return cls(**values)
    except ValueError as exc:
        # __post_init__ cross-field checks raise ValueError("key: message").
        key, _, message = str(exc).partition(": ")
        problems.add(_join(path, key) if message else path, message or str(exc))
        raise _Invalid from exc


def load_dataclass(cls: type[T], data: Any, source: str) -> T:
    """Build ``cls`` from parsed data or raise ConfigError listing every problem."""
    problems = _Problems(source)
    try:
        result = _load(cls, data, "", problems)
    except _Invalid:
        raise ConfigError(problems.items) from None
    if problems.items:
        raise ConfigError(problems.items)
    return result


# --- environment overrides ------------------------------------------------------


def env_names(cls: type[Any], prefix: str = ENV_PREFIX) -> dict[str, tuple[str, ...]]:
    """Map every overridable scalar setting to its ``FEEDGUARD_*`` variable name."""
    names: dict[str, tuple[str, ...]] = {}
    hints = get_type_hints(cls)

    def walk(tp: Any, path: tuple[str, ...]) -> None:
        inner = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) in (typing.Union, types.UnionType) and len(inner) == 1:
            tp = inner[0]
        if dataclasses.is_dataclass(tp):
            sub_hints = get_type_hints(tp)
            for fld in dataclasses.fields(tp):
                if fld.metadata.get("env", True):
                    walk(sub_hints[fld.name], (*path, fld.name))
            return
        if get_origin(tp) in (dict, Mapping, list, tuple):
            return
        names[prefix + "_".join(path).upper()] = path

    for fld in dataclasses.fields(cls):
        if fld.metadata.get("env", True):
            walk(hints[fld.name], (fld.name,))
    return names


def apply_env(
    cls: type[Any], data: Any, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Overlay ``FEEDGUARD_*`` variables onto raw config data.

    Values are parsed as YAML scalars, so ``FEEDGUARD_PROBES_ENABLED=false``
    is a boolean and ``FEEDGUARD_REDIS_URL=redis://…`` a string.  Returns the
    new data and the names of the variables applied (for the start-up log).
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = _deep_copy(data) if isinstance(data, dict) else {}
    applied = []
    for name, path in env_names(cls).items():
        if name not in environ:
            continue
        raw = environ[name]
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict | list):
            value = raw
        node = merged
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = value
        applied.append(name)
    return merged, applied


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def read_secret(value: str | None, file: str | None, what: str) -> str | None:
    """A secret given inline (from the environment) or through a ``*_file`` setting."""
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"{file}: <file>: cannot read {what}: {exc.strerror}"]) from exc
    return value
