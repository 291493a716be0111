"""Loading a service's configuration (exporter and responder): settings, catalog, secrets."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from .catalog import Catalog, load_catalog
from .env import EnvSource, overlay
from .paths import resolve_paths
from .schema import ConfigError, ServiceSettings, load_model
from .yamlfile import read_yaml_all

# A service's settings with ``catalog`` and ``catalog_file`` fields.
C = TypeVar("C", bound=ServiceSettings)


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
    that needs part of another service's file, like record-success).
    """
    environ = os.environ if environ is None else environ
    data, errors = read_yaml_all(path) if path else ({}, [])
    if keys is not None and isinstance(data, dict):
        data = {key: value for key, value in data.items() if key in keys}
    source = str(path) if path else "<defaults>"
    env = EnvSource(cls, environ)
    merged = overlay(data, env())
    errors.extend(env.errors)
    config: C | None = None
    try:
        config = load_model(cls, merged, source, env.origins)
    except ConfigError as exc:
        errors.extend(exc.errors)
    if config is not None and path:
        config = resolve_paths(config, Path(path).parent)
    catalog: Catalog | None = getattr(config, "catalog", None)
    raw = merged if isinstance(merged, dict) else {}
    inline = catalog is not None if config else "catalog" in raw
    default_file = cls.model_fields["catalog_file"].default
    catalog_file = (
        getattr(config, "catalog_file", None) if config else raw.get("catalog_file", default_file)
    )
    if not inline and isinstance(catalog_file, str):
        try:
            catalog = load_catalog(catalog_path(catalog_file, path, default_file))
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
    return config.model_copy(update={"catalog": catalog})


# The shipped catalog, installed with the package (a link to
# config/external_providers.yml in the repository), so the embedded defaults
# work from any working directory.
PACKAGED_CATALOG = Path(__file__).with_name("external_providers.yml")


def catalog_path(
    catalog_file: str, config_path: str | Path | None, default_file: object = None
) -> Path:
    """One rule: a relative path is relative to the config file's folder. Without
    a config file the default names the packaged catalog; another relative path
    (from the environment) is relative to the working directory."""
    path = Path(catalog_file)
    if path.is_absolute():
        return path
    if config_path:
        return Path(config_path).parent / path
    if catalog_file == default_file:
        return PACKAGED_CATALOG
    return path
