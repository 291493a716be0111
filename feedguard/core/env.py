"""``FEEDGUARD_*`` environment overrides, a pydantic-settings source.

Every setting has a variable: its path joined by ``_`` under ``FEEDGUARD_``
(``redis.url`` is ``FEEDGUARD_REDIS_URL``, ``probes.enabled`` is
``FEEDGUARD_PROBES_ENABLED``).  Those are the documented names, so the source
is our own rather than pydantic-settings' ``EnvSettingsSource``, whose nested
names need a delimiter that cannot be ``_`` (field names contain it).

- A scalar is read as its setting's type: ``false``/``no``/``off``/``0`` for a
  boolean, a number for a number; strings stay strings (a password ``12345``
  does not become a number).  An empty value sets an optional setting to null.
- A structured setting (a section, a list, a mapping such as
  ``action_options``) takes JSON: ``FEEDGUARD_ACTION_OPTIONS='{"pause_dags":
  {"dry_run": true}}'``.  A JSON object is merged into the file's mapping;
  a list replaces the file's.
- ``__`` goes further down, into mapping keys too:
  ``FEEDGUARD_ACTION_OPTIONS__PAUSE_DAGS__DRY_RUN=true``.  Keys are lower-cased.
  A value below a ``params`` mapping is JSON when it parses as JSON, else text.
- A ``FEEDGUARD_*`` variable that is none of these is an error naming it (a
  misspelt variable would otherwise be ignored), except the few the project
  uses for other purposes (``NOT_SETTINGS``) and the other service's settings
  (``service_variables``, generated): one environment may serve both services.

Errors in a value name the variable: ``env FEEDGUARD_REDIS_URL: redis.url: ...``.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .errors import join_path
from .schema import NoEnv
from .service_variables import SERVICE_VARIABLES

ENV_PREFIX = "FEEDGUARD_"
NESTED = "__"

# FEEDGUARD_* variables that are not settings, and who reads them.
NOT_SETTINGS: Mapping[str, str] = {
    "FEEDGUARD_EXPORTER_CONFIG": "record-success: the exporter settings file to read",
    "FEEDGUARD_RESPONDER_CONFIG": "reserved: the responder settings file",
    "FEEDGUARD_APPROVER_TOKEN": "feedguard-responder approve|deny: the approver's token",
    "FEEDGUARD_AIRFLOW_VENV": "the test suite: the Airflow 3 venv to start",
    "FEEDGUARD_FUZZ_BODIES": "the test suite: how many bodies the webhook fuzz test sends",
    "FEEDGUARD_FUZZ_SEED": "the test suite: the webhook fuzz test's seed",
}

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def env_names(cls: type[BaseModel], prefix: str = ENV_PREFIX) -> dict[str, tuple[str, ...]]:
    """Every setting's variable name and its path; sections and mappings included."""
    return {name: path for name, (path, _) in _settings(cls, prefix).items()}


def _settings(cls: type[BaseModel], prefix: str) -> dict[str, tuple[tuple[str, ...], Any]]:
    found: dict[str, tuple[tuple[str, ...], Any]] = {}

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            if _no_env(field):
                continue
            sub = (*path, name)
            found[prefix + "_".join(sub).upper()] = (sub, field.annotation)
            inner = _unwrap(field.annotation)
            if _is_model(inner):
                walk(inner, sub)

    walk(cls, ())
    return found


class EnvSource(PydanticBaseSettingsSource):
    """The ``FEEDGUARD_*`` variables of ``environ`` as nested settings data.

    After the call, ``origins`` maps each overridden path to ``env NAME`` and
    ``errors`` lists unknown variables and values that are not JSON.  A
    variable of another service's settings is left alone (record-success reads
    part of the exporter's settings: the exporter's other variables are the
    exporter's to judge).
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ
        self.origins: dict[str, str] = {}
        self.errors: list[str] = []

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Required by the base class; __call__ reads every variable at once instead.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        known = _settings(self.settings_cls, ENV_PREFIX)
        found: list[tuple[tuple[str, ...], Any, str]] = []
        for name in sorted(self.environ):
            if not name.upper().startswith(ENV_PREFIX) or name.upper() in NOT_SETTINGS:
                continue
            resolved = _resolve(name.upper(), known)
            if resolved is None:
                if not _another_services(name.upper(), known):
                    self.errors.append(_unknown(name, known))
                continue
            path, tp = resolved
            try:
                value = _read(tp, self.environ[name])
            except ValueError as exc:
                self.errors.append(f"env {name}: {_dotted(path)}: {exc}")
                continue
            found.append((path, value, name))
        data: dict[str, Any] = {}
        # Shallower first: FEEDGUARD_ACTION_OPTIONS, then its __ refinements.
        for path, value, name in sorted(found, key=lambda item: len(item[0])):
            _put(data, path, value)
            for sub in _paths(_dotted(path), value):
                self.origins[sub] = f"env {name}"
        return data


def overlay(data: Any, overrides: Mapping[str, Any]) -> Any:
    """``data`` (a parsed file) with ``overrides`` merged in; mappings merge, the rest replaces."""
    if data is None:
        return dict(overrides)
    if not isinstance(data, dict):
        return data  # the file's own value is wrong there; validation reports it
    merged = dict(data)
    for key, value in overrides.items():
        old = merged.get(key)
        merged[key] = (
            overlay(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
        )
    return merged


def _resolve(
    name: str, known: Mapping[str, tuple[tuple[str, ...], Any]]
) -> tuple[tuple[str, ...], Any] | None:
    head, *rest = name.split(NESTED)
    if head not in known:
        return None
    path, tp = known[head]
    for part in rest:
        inner = _unwrap(tp)
        key = part.lower()
        if _is_model(inner):
            field = inner.model_fields.get(key)
            if field is None or _no_env(field):
                return None
            tp = field.annotation
        elif get_origin(inner) in (dict, Mapping) and key:
            tp = get_args(inner)[1]
        else:
            return None
        path = (*path, key)
    return path, tp


def _another_services(name: str, known: Mapping[str, Any]) -> bool:
    head = name.split(NESTED)[0]
    return head not in known and any(head in names for names in SERVICE_VARIABLES.values())


def _unknown(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name.split(NESTED)[0].upper(), list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"env {name}: <name>: not a setting{hint}"


def _read(tp: Any, raw: str) -> Any:
    """An environment string as the setting's type; left a string when it does not fit.

    A value that does not fit then fails validation like a bad YAML value
    would, naming the variable.
    """
    tp = _strip_annotated(tp)
    optional = _optional_of(tp)
    if optional is not None:
        if raw == "":
            return None
        tp = _strip_annotated(optional)
    text = raw.strip()
    if tp is Any:
        try:
            return json.loads(text)
        except ValueError:
            return raw
    if _is_model(tp) or get_origin(tp) in (tuple, list, dict, Mapping):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON here: {exc.msg} at column {exc.colno}") from None
    if get_origin(tp) is Literal:
        # The choice whose text this is (Literal[2, 3] accepts "3" as 3).
        for choice in get_args(tp):
            if not isinstance(choice, bool) and str(choice) == text:
                return choice
        return raw
    if tp is bool:
        return True if text.lower() in _TRUE else False if text.lower() in _FALSE else raw
    for number in (int, float):
        if tp is number:
            try:
                return number(text)
            except ValueError:
                return raw
    return raw


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return  # a JSON value above set something else here; that wins
    old = node.get(path[-1])
    node[path[-1]] = overlay(old, value) if isinstance(old, dict) else value


def _paths(path: str, value: Any) -> Iterator[str]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(join_path(path, str(key)), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(join_path(path, index), item)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _no_env(field: FieldInfo) -> bool:
    return any(isinstance(item, NoEnv) for item in field.metadata)


def _strip_annotated(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _optional_of(tp: Any) -> Any:
    args = get_args(tp)
    if get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return None


def _unwrap(tp: Any) -> Any:
    tp = _strip_annotated(tp)
    inner = _optional_of(tp)
    return _strip_annotated(inner) if inner is not None else tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)
