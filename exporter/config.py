"""The exporter's one frozen configuration object, from YAML plus FEEDGUARD_* overrides."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .airflow import AirflowSettings
from .catalog import Catalog, load_catalog
from .collectors.dbt import DbtSettings
from .collectors.quality import QualitySettings
from .log import LogFormat
from .schema import (
    ConfigError,
    apply_env,
    check_listen,
    check_non_negative,
    check_positive,
    check_redis_url,
    env_origins,
    field,
    load_dataclass,
    read_secret,
    read_yaml_all,
)

DEFAULT_LISTEN = "127.0.0.1:9816"
_CATALOG_FILE = "config/external_providers.yml"


@dataclass(frozen=True)
class RedisSettings:
    url: str = field("redis://127.0.0.1:6379/0", check=check_redis_url)
    password: str | None = field(None, doc="prefer FEEDGUARD_REDIS_PASSWORD or password_file")
    password_file: str | None = None
    socket_timeout_seconds: float = field(2.0, check=check_positive)


@dataclass(frozen=True)
class ScrapeSettings:
    # Used when a request carries no X-Prometheus-Scrape-Timeout-Seconds header
    # (curl, a browser): Prometheus' own default scrape timeout.
    default_timeout_seconds: float = field(10.0, check=check_positive)
    # Kept back from Prometheus' timeout for rendering and the network.
    deadline_margin_seconds: float = field(0.5, check=check_non_negative)
    max_timeout_seconds: float = field(60.0, check=check_positive)


@dataclass(frozen=True)
class ProbeSettings:
    enabled: bool = True
    concurrency: int = field(32, check=check_positive)
    user_agent: str = "feedguard-exporter/0.1 (+health probe)"


@dataclass(frozen=True)
class LogSettings:
    level: str = field(
        "info",
        check=lambda v: (
            None
            if v.lower() in ("debug", "info", "warning", "error")
            else f"expected debug, info, warning or error, got {v!r}"
        ),
    )
    format: LogFormat = "auto"


@dataclass(frozen=True)
class ExporterConfig:
    listen: str = field(DEFAULT_LISTEN, check=check_listen)
    catalog_file: str = _CATALOG_FILE
    # An inline catalog wins over catalog_file (handy for tests and one-file set-ups).
    catalog: Catalog | None = field(None, env=False)
    redis: RedisSettings = RedisSettings()
    scrape: ScrapeSettings = ScrapeSettings()
    probes: ProbeSettings = ProbeSettings()
    # Off by default (enabled: false); docs/collectors.md.
    airflow: AirflowSettings = field(default_factory=AirflowSettings)
    dbt: DbtSettings = field(default_factory=DbtSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    log: LogSettings = LogSettings()

    @property
    def providers(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("configuration was built without a catalog")
        return self.catalog

    def redis_password(self) -> str | None:
        return read_secret(self.redis.password, self.redis.password_file, "redis password")


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ExporterConfig:
    """Read, override from the environment and validate; ConfigError lists every problem.

    The catalog is checked even when the settings have errors, so one run of
    ``check-config`` reports the mistakes of both files.
    """
    environ = os.environ if environ is None else environ
    data, errors = read_yaml_all(path) if path else ({}, [])
    source = str(path) if path else "<defaults>"
    merged, applied = apply_env(ExporterConfig, data, environ)
    config: ExporterConfig | None = None
    try:
        config = load_dataclass(
            ExporterConfig, merged, source, env_origins(ExporterConfig, applied)
        )
    except ConfigError as exc:
        errors.extend(exc.errors)
    catalog: Catalog | None = config.catalog if config else None
    inline = config.catalog is not None if config else "catalog" in merged
    catalog_file = config.catalog_file if config else merged.get("catalog_file", _CATALOG_FILE)
    if not inline and isinstance(catalog_file, str):
        try:
            catalog = load_catalog(_catalog_path(catalog_file, path))
        except ConfigError as exc:
            errors.extend(exc.errors)
    if config is not None and config.redis.password_file:
        try:
            config.redis_password()
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors or config is None:
        raise ConfigError(errors)
    return dataclasses.replace(config, catalog=catalog)


def _catalog_path(catalog_file: str, config_path: str | Path | None) -> Path:
    catalog_path = Path(catalog_file)
    if config_path and not catalog_path.is_absolute():
        # Relative to the config file, so a config directory can move as a whole;
        # a path relative to the working directory is accepted when that is none.
        candidate = Path(config_path).parent / catalog_path
        if candidate.exists() or not catalog_path.exists():
            return candidate
    return catalog_path


__all__ = ["ConfigError", "ExporterConfig", "load_config"]
