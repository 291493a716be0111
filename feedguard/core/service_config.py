"""Loading a service's configuration (exporter and responder): settings, catalog, secrets."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from .catalog import Catalog, load_catalog
from .schema import ConfigError, apply_env, env_origins, load_dataclass, read_yaml_all


class ServiceConfig(Protocol):
    """A frozen config dataclass with a catalog, inline or from ``catalog_file``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def catalog(self) -> Catalog | None: ...

    @property
    def catalog_file(self) -> str: ...


C = TypeVar("C", bound=ServiceConfig)


def load_service_config(
    cls: type[C],
    path: str | Path | None,
    environ: Mapping[str, str] | None,
    checks: Callable[[C], Iterable[Callable[[], object]]] = lambda config: (),
    *,
    keys: Collection[str] | None = None,
) -> C:
    """Read, override from the environment and validate; ConfigError lists every problem.

    The catalog is checked even when the settings have errors, and every one of
    ``checks(config)`` (secret files that must be readable now, not at the first
    request) runs, so one run of ``check-config`` reports all the mistakes.
    With ``keys``, only those top-level keys of the file are read (a loader
    that needs part of another service's file).
    """
    environ = os.environ if environ is None else environ
    data, errors = read_yaml_all(path) if path else ({}, [])
    if keys is not None and isinstance(data, dict):
        data = {key: value for key, value in data.items() if key in keys}
    source = str(path) if path else "<defaults>"
    merged, applied = apply_env(cls, data, environ)
    config: C | None = None
    try:
        config = load_dataclass(cls, merged, source, env_origins(cls, applied))
    except ConfigError as exc:
        errors.extend(exc.errors)
    catalog: Catalog | None = config.catalog if config else None
    inline = config.catalog is not None if config else "catalog" in merged
    default_file = cls.__dataclass_fields__["catalog_file"].default
    catalog_file = config.catalog_file if config else merged.get("catalog_file", default_file)
    if not inline and isinstance(catalog_file, str):
        try:
            catalog = load_catalog(catalog_path(catalog_file, path))
        except ConfigError as exc:
            errors.extend(exc.errors)
    if config is not None:
        for check in checks(config):
            try:
                check()
            except ConfigError as exc:
                errors.extend(exc.errors)
    if errors or config is None:
        raise ConfigError(errors)
    return dataclasses.replace(config, catalog=catalog)


def catalog_path(catalog_file: str, config_path: str | Path | None) -> Path:
    path = Path(catalog_file)
    if config_path and not path.is_absolute():
        # Relative to the config file, so a config directory can move as a whole;
        # a path relative to the working directory is accepted when that is none.
        candidate = Path(config_path).parent / path
        if candidate.exists() or not path.exists():
            return candidate
    return path
