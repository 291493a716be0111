"""Typed configuration shared by both services, on pydantic.

Configuration is described by frozen pydantic models deriving from
``ConfigModel``: strict (a YAML ``"yes"`` is not a boolean, ``2.5`` not an
integer), unknown keys refused, validated once at start-up.  ``load_model``
turns every validation problem into ``file: path.to.key: what is wrong`` (see
``validation_errors``) and only returns an object when there is none, so a
service never starts on half-valid settings.

Writing a setting:

- the type says what is accepted; the reusable ``Annotated`` types below add
  the checks (``PositiveFloat``, ``HttpUrl``, ``Name``...), ``check(fn)`` wraps
  any ``fn(value) -> message | None``;
- ``Field(default, description=...)`` documents it (shown in the JSON Schemas);
- ``Secret`` for a secret (``[redacted]`` in a repr; give it through the
  environment or a ``*_file`` setting read by ``read_secret``);
- ``NoEnv`` in ``Annotated[...]`` keeps a field out of ``FEEDGUARD_*`` overrides;
- lists are ``Items[T]`` (a tuple: the object stays immutable);
- checks across fields go in a ``model_validator(mode="after")`` raising through
  ``invalid()`` (one ``key: message`` per problem).

``feedguard.core.env`` reads the ``FEEDGUARD_*`` overrides and
``feedguard.core.service_config`` puts file, environment and catalog together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError, DuplicateKeysError
from .log import redact_text, register_secret
from .validation_errors import SecretMark, describe_errors
from .yamlfile import parse_yaml, read_yaml, read_yaml_all

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


Secret = Annotated[str | None, SecretMark()]


class _Redacted:
    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A config object may end up in a log line or a traceback: mask the secrets.
        fields = type(self).model_fields  # type: ignore[attr-defined]  # a BaseModel mixin
        for name, value in super().__repr_args__():  # type: ignore[misc]  # same
            field = fields.get(name) if name else None
            if (
                value is not None
                and field
                and any(isinstance(m, SecretMark) for m in field.metadata)
            ):
                yield name, "[redacted]"
            else:
                yield name, value


class ConfigModel(_Redacted, BaseModel):
    """A frozen, strict settings section; an empty YAML section (``redis:``) means defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_section_is_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


class ServiceSettings(_Redacted, BaseSettings):
    """A service's whole configuration (the root of its file): ``ConfigModel``'s rules.

    ``service_config.load_service_config`` reads the file and the ``FEEDGUARD_*``
    variables (``feedguard.core.env``) and reports every problem of both; built
    in code, a configuration is exactly its arguments.
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid", strict=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class NoEnv:
    """``Annotated`` marker: the field has no ``FEEDGUARD_*`` variable (structured data)."""


NO_ENV = NoEnv()

# YAML lists become tuples. Strict mode alone would accept only tuples here.
Items = Annotated[tuple[T, ...], Field(strict=False)]


def check(fn: Callable[[Any], str | None]) -> AfterValidator:
    """A validator from ``fn(value) -> message | None``; the message is the error as shown."""

    def validate(value: Any) -> Any:
        if value is not None:
            message = fn(value)
            if message:
                raise PydanticCustomError("feedguard", "{message}", {"message": message})
        return value

    return AfterValidator(validate)


def invalid(problems: Iterable[tuple[str, str]]) -> None:
    """Raise the ValueError ``load_model`` turns into one error per (key, message)."""
    lines = [f"{key}: {message}" for key, message in problems]
    if lines:
        raise ValueError("\n".join(lines))


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


def check_dbt_selector(value: Any) -> str | None:
    """dbt's --select (one line; a union's parts separated by spaces)."""
    text = str(value)
    if not text.strip():
        return "must name what dbt test selects (its --select), got an empty string"
    if any(not c.isprintable() for c in text):
        return f"must be one line of printable characters, got {text[:64]!r}"
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


# The reusable setting types. Bounds are pydantic's own (they show in the JSON
# Schemas); their errors read "must be greater than 0, got -1.0".
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
AtLeastOne = Annotated[int, Field(ge=1)]
HttpUrl = Annotated[str, check(check_http_url)]
RedisUrl = Annotated[str, check(check_redis_url)]
Listen = Annotated[str, check(check_listen)]
Name = Annotated[str, check(check_name)]
Names = Annotated[Items[str], check(check_names)]
DbtSelector = Annotated[str, check(check_dbt_selector)]


# --- loading ------------------------------------------------------------------


def load_model(cls: type[M], data: Any, source: str, origins: Mapping[str, str] | None = None) -> M:
    """Build ``cls`` from parsed data or raise ConfigError listing every problem.

    ``origins`` maps a dotted key path to where its value came from when that
    is not ``source`` (``env FEEDGUARD_REDIS_URL``); an error under that path
    names it.
    """
    try:
        return cls.model_validate({} if data is None else data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, cls, source, origins or {})) from None


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


__all__ = [
    "NO_ENV",
    "AtLeastOne",
    "ConfigError",
    "ConfigModel",
    "DbtSelector",
    "DuplicateKeysError",
    "HttpUrl",
    "Items",
    "Listen",
    "Name",
    "Names",
    "NoEnv",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "RedisUrl",
    "Secret",
    "ServiceSettings",
    "check",
    "check_dbt_selector",
    "check_http_url",
    "check_listen",
    "check_name",
    "check_names",
    "check_redis_url",
    "invalid",
    "load_model",
    "parse_listen",
    "parse_yaml",
    "read_secret",
    "read_yaml",
    "read_yaml_all",
]
