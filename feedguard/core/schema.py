"""Typed configuration loading shared by both services.

Configuration is described by frozen dataclasses.  ``load_dataclass`` walks a
parsed YAML document against those types, collects *every* mistake as
``file: path.to.key: what is wrong`` and only returns an object when there is
none, so a service never starts on half-valid settings.

Field-level rules live in ``dataclasses.field(metadata=...)``:

- ``check``: a callable returning an error message or ``None``;
- ``env``: ``False`` to keep a field out of ``FEEDGUARD_*`` overrides;
- ``doc``: one line shown by ``--help-config`` style listings.

Checks across fields go in ``__post_init__``, raising through ``invalid()``
(one ``key: message`` per problem).  Checks across list items that must run
even when an item is invalid (duplicate names) go in a ``check_raw(data)``
static method returning ``(key, message)`` pairs; it sees the raw mapping.

``load_settings`` is the usual entry point: YAML file, then ``FEEDGUARD_*``
overrides (each read as its setting's type; errors name the variable), then
validation.
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

from .log import redact_text, register_secret

T = TypeVar("T")

ENV_PREFIX = "FEEDGUARD_"


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


class _Problems:
    def __init__(self, source: str, origins: Mapping[str, str] | None = None) -> None:
        self.source = source
        # Settings that came from somewhere else (an environment variable) name it instead.
        self.origins = origins or {}
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        source = self.origins.get(path, self.source)
        self.items.append(f"{source}: {path or '<root>'}: {message}")


# --- YAML ---------------------------------------------------------------------


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors and duplicate keys become ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: <file>: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: <file>: not UTF-8 text: {exc.reason}"]) from exc
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML safely, refusing duplicate mapping keys (PyYAML keeps the last silently)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        problems = _Problems(source)
        if node is not None:
            _find_duplicates(node, "", problems, set())
        data = loader.construct_document(node) if node is not None else None
        if problems.items:
            raise DuplicateKeysError(problems.items, data)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "<file>"
        raise ConfigError([f"{source}: {where}: {exc.problem or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: <file>: {exc}"]) from exc
    finally:
        loader.dispose()


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _find_duplicates(node: yaml.Node, path: str, problems: _Problems, seen: set[int]) -> None:
    """Report every repeated key with its path, walking the composed node tree."""
    if id(node) in seen:  # an alias of a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            # Merge keys (<<) may be overridden by explicit keys: that is their purpose.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                ident = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in first:
                    problems.add(
                        _join(path, key_node.value),
                        f"duplicate key on line {line} (first defined on line {first[ident]})",
                    )
                else:
                    first[ident] = line
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            _find_duplicates(value_node, _join(path, key), problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicates(item, _join(path, index), problems, seen)


# --- field checks -------------------------------------------------------------


def _port_problem(value: str) -> str | None:
    try:
        urlsplit(value).port  # noqa: B018 (the property validates the port)
    except ValueError as exc:
        return f"{exc}: {redact_text(value)!r}"
    return None


def check_http_url(value: Any) -> str | None:
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http(s) URL with a host, got {redact_text(text)!r}"
    if any(c.isspace() for c in text):
        return f"URL contains whitespace: {redact_text(text)!r}"
    return _port_problem(text)


def check_redis_url(value: Any) -> str | None:
    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        return f"expected a redis://, rediss:// or unix:// URL, got {redact_text(text)!r}"
    if parts.scheme == "unix" and not parts.path:
        return f"a unix:// URL needs a socket path, got {redact_text(text)!r}"
    if any(c.isspace() for c in text):
        return f"URL contains whitespace: {redact_text(text)!r}"
    return _port_problem(text)


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


def check_names(value: Any) -> str | None:
    """A list of names (datasets, DAGs): each valid, none twice."""
    problems = []
    seen: dict[str, int] = {}
    for index, name in enumerate(value):
        message = check_name(name)
        if message:
            problems.append(f"[{index}] {message}")
        if name in seen:
            problems.append(f"[{index}] {name!r} is listed twice (first at [{seen[name]}])")
        seen.setdefault(name, index)
    return "; ".join(problems) or None


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
    # Checks across items (duplicate names) that must run even when an item is
    # invalid, so one run lists every mistake; __post_init__ only sees valid data.
    raw_check = getattr(cls, "check_raw", None)
    if raw_check is not None:
        for key, message in raw_check(data):
            problems.add(_join(path, key) if key else path, message)
            ok = False
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
        # __post_init__ cross-field checks raise ValueError("key: message"), one
        # problem per line (see invalid()).
        for line in str(exc).splitlines():
            key, _, message = line.partition(": ")
            problems.add(_join(path, key) if message else path, message or line)
        raise _Invalid from exc


def invalid(problems: Iterable[tuple[str, str]]) -> None:
    """Raise the ValueError ``load_dataclass`` turns into one error per (key, message)."""
    lines = [f"{key}: {message}" for key, message in problems]
    if lines:
        raise ValueError("\n".join(lines))


def load_dataclass(
    cls: type[T], data: Any, source: str, origins: Mapping[str, str] | None = None
) -> T:
    """Build ``cls`` from parsed data or raise ConfigError listing every problem.

    ``origins`` maps a dotted key path to where its value came from when that
    is not ``source`` (see ``env_origins``).
    """
    problems = _Problems(source, origins)
    try:
        result = _load(cls, data, "", problems)
    except _Invalid:
        raise ConfigError(problems.items) from None
    if problems.items:
        raise ConfigError(problems.items)
    return result


# --- environment overrides ------------------------------------------------------


def _env_fields(cls: type[Any], prefix: str) -> dict[str, tuple[tuple[str, ...], Any]]:
    fields: dict[str, tuple[tuple[str, ...], Any]] = {}

    def walk(tp: Any, path: tuple[str, ...]) -> None:
        inner = [a for a in get_args(tp) if a is not type(None)]
        plain = inner[0] if _is_optional(tp) else tp
        if isinstance(plain, type) and dataclasses.is_dataclass(plain):
            sub_hints = get_type_hints(plain)
            for fld in dataclasses.fields(plain):
                if fld.metadata.get("env", True):
                    walk(sub_hints[fld.name], (*path, fld.name))
            return
        if get_origin(plain) in (dict, Mapping, list, tuple):
            return
        fields[prefix + "_".join(path).upper()] = (path, tp)

    hints = get_type_hints(cls)
    for fld in dataclasses.fields(cls):
        if fld.metadata.get("env", True):
            walk(hints[fld.name], (fld.name,))
    return fields


def _is_optional(tp: Any) -> bool:
    args = get_args(tp)
    return (
        get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2
    )


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _env_value(tp: Any, raw: str) -> Any:
    """An environment string as the setting's type; left a string when it does not fit.

    A value that does not fit then fails validation like a bad YAML value
    would, naming the variable.  Strings stay strings: a password ``12345`` or
    ``yes`` must not turn into a number or a boolean.
    """
    if _is_optional(tp):
        if raw == "":
            return None
        tp = next(a for a in get_args(tp) if a is not type(None))
    text = raw.strip()
    if get_origin(tp) is Literal:
        # The choice whose text this is (Literal[2, 3] accepts "3" as 3).
        for choice in get_args(tp):
            if not isinstance(choice, bool) and str(choice) == text:
                return choice
        return raw
    if tp is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        return raw
    if tp is int:
        try:
            return int(text)
        except ValueError:
            return raw
    if tp is float:
        try:
            return float(text)
        except ValueError:
            return raw
    return raw


def env_names(cls: type[Any], prefix: str = ENV_PREFIX) -> dict[str, tuple[str, ...]]:
    """Map every overridable scalar setting to its ``FEEDGUARD_*`` variable name."""
    return {name: path for name, (path, _) in _env_fields(cls, prefix).items()}


def apply_env(
    cls: type[Any], data: Any, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Overlay ``FEEDGUARD_*`` variables onto raw config data.

    Each value is read as its setting's type (``FEEDGUARD_PROBES_ENABLED=false``
    is a boolean, ``FEEDGUARD_REDIS_URL=redis://…`` a string).  Returns the new
    data and the names of the variables applied; ``env_origins`` turns those
    into the ``origins`` of ``load_dataclass`` so errors name the variable.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = _deep_copy(data) if isinstance(data, dict) else {}
    applied = []
    for name, (path, tp) in _env_fields(cls, ENV_PREFIX).items():
        if name not in environ:
            continue
        node = merged
        for key in path[:-1]:
            child = node.get(key)
            if child is None:
                child = {}
                node[key] = child
            if not isinstance(child, dict):
                break  # the file's own value is wrong there; that error is reported
            node = child
        else:
            node[path[-1]] = _env_value(tp, environ[name])
            applied.append(name)
    return merged, applied


def env_origins(cls: type[Any], applied: Iterable[str], prefix: str = ENV_PREFIX) -> dict[str, str]:
    """{dotted key path: "env NAME"} for the variables ``apply_env`` applied."""
    names = env_names(cls, prefix)
    return {".".join(names[name]): f"env {name}" for name in applied if name in names}


def read_yaml_all(path: str | Path) -> tuple[Any, list[str]]:
    """``read_yaml`` that returns the data despite duplicate keys, with those errors."""
    try:
        return read_yaml(path), []
    except DuplicateKeysError as exc:
        return exc.data, exc.errors


def load_settings(
    cls: type[T], path: str | Path | None, environ: Mapping[str, str] | None = None
) -> T:
    """Read ``path`` (or nothing: defaults), apply ``FEEDGUARD_*`` and validate."""
    data, errors = read_yaml_all(path) if path else ({}, [])
    merged, applied = apply_env(cls, data, environ)
    source = str(path) if path else "<defaults>"
    try:
        result = load_dataclass(cls, merged, source, env_origins(cls, applied))
    except ConfigError as exc:
        raise ConfigError([*errors, *exc.errors]) from None
    if errors:
        raise ConfigError(errors)
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def read_secret(value: str | None, file: str | None, what: str) -> str | None:
    """A secret given inline (from the environment) or through a ``*_file`` setting.

    Whatever is read is registered with the log set-up, which masks it in every line."""
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"{file}: <file>: cannot read {what}: {exc.strerror}"]) from exc
    register_secret(value)
    return value
