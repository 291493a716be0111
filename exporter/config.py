"""The exporter's one frozen configuration object, from YAML plus FEEDGUARD_* overrides."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .catalog import Catalog, load_catalog
from .log import LogFormat
from .schema import (
    ConfigError,
    apply_env,
    check_listen,
    check_non_negative,
    check_positive,
    check_redis_url,
    field,
    load_dataclass,
    read_secret,
    read_yaml,
)

DEFAULT_LISTEN = "127.0.0.1:9816"


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
    catalog_file: str = "config/external_providers.yml"
    # An inline catalog wins over catalog_file (handy for tests and one-file set-ups).
    catalog: Catalog | None = field(None, env=False)
    redis: RedisSettings = RedisSettings()
    scrape: ScrapeSettings = ScrapeSettings()
    probes: ProbeSettings = ProbeSettings()
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
    """Read, override from the environment and validate; ConfigError lists every problem."""
    environ = os.environ if environ is None else environ
    data = read_yaml(path) if path else {}
    source = str(path) if path else "<defaults>"
    merged, _ = apply_env(ExporterConfig, data, environ)
    config = load_dataclass(ExporterConfig, merged, source)
    if config.catalog is None:
        catalog_path = Path(config.catalog_file)
        if path and not catalog_path.is_absolute():
            # Relative to the config file, so a config directory can move as a whole.
            candidate = Path(path).parent / catalog_path
            catalog_path = candidate if candidate.exists() else catalog_path
        config = dataclasses.replace(config, catalog=load_catalog(catalog_path))
    return config


__all__ = ["ConfigError", "ExporterConfig", "load_config"]
