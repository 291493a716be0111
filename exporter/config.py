"""The exporter's one frozen configuration object, from YAML plus FEEDGUARD_* overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from feedguard.core.airflow import AirflowSettings
from feedguard.core.catalog import Catalog
from feedguard.core.http_hardening import HttpSettings
from feedguard.core.kube import KubeReadSettings
from feedguard.core.schema import (
    ConfigError,
    check_listen,
    check_non_negative,
    check_positive,
    field,
)
from feedguard.core.seatunnel import SeaTunnelSettings
from feedguard.core.service_config import load_service_config
from feedguard.core.settings import LogSettings, RedisSettings

from .collectors.consumers import read_tokens
from .collectors.dbt import DbtSettings
from .collectors.quality import QualitySettings
from .lineage.settings import LineageSettings

DEFAULT_LISTEN = "127.0.0.1:9816"
_CATALOG_FILE = "config/external_providers.yml"


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
class ExporterConfig:
    listen: str = field(DEFAULT_LISTEN, check=check_listen)
    catalog_file: str = _CATALOG_FILE
    # An inline catalog wins over catalog_file (handy for tests and one-file set-ups).
    catalog: Catalog | None = field(None, env=False)
    redis: RedisSettings = RedisSettings()
    scrape: ScrapeSettings = ScrapeSettings()
    probes: ProbeSettings = ProbeSettings()
    # Rate limit and gzip of this service's own HTTP (docs/exporter.md#http-hardening).
    http: HttpSettings = field(default_factory=HttpSettings)
    # Off by default (enabled: false); docs/collectors.md.
    airflow: AirflowSettings = field(default_factory=AirflowSettings)
    dbt: DbtSettings = field(default_factory=DbtSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    seatunnel: SeaTunnelSettings = field(default_factory=SeaTunnelSettings)
    # Credential Secrets' metadata (catalog credentials); off by default.
    kubernetes: KubeReadSettings = field(default_factory=KubeReadSettings)
    # POST /api/v1/lineage, off by default; docs/lineage.md.
    lineage: LineageSettings = field(default_factory=LineageSettings)
    log: LogSettings = LogSettings()

    @property
    def providers(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("configuration was built without a catalog")
        return self.catalog

    def redis_password(self) -> str | None:
        return self.redis.read_password()


def check_artifact_paths(config: ExporterConfig, source: str) -> None:
    """The dbt and GX paths of enabled collectors exist and are of the right kind
    (a missing one was accepted here and left the collector down for good)."""
    wanted: list[tuple[str, str | None, str]] = []
    if config.dbt.enabled:
        wanted += [
            ("dbt.sources_json", config.dbt.sources_json, "file"),
            ("dbt.manifest_json", config.dbt.manifest_json, "file"),
        ]
    if config.quality.enabled:
        wanted.append(("quality.validations_dir", config.quality.validations_dir, "dir"))
    errors = []
    for key, value, kind in wanted:
        if value is None:
            continue
        target = Path(value)
        if not target.exists():
            errors.append(f"{source}: {key}: {value} does not exist")
        elif kind == "file" and not target.is_file():
            errors.append(f"{source}: {key}: {value} is not a file")
        elif kind == "dir" and not target.is_dir():
            errors.append(f"{source}: {key}: {value} is not a directory")
    if errors:
        raise ConfigError(errors)


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ExporterConfig:
    """Read, override from the environment and validate; ConfigError lists every problem.

    The catalog is checked even when the settings have errors, so one run of
    ``check-config`` reports the mistakes of both files.
    """
    config = load_service_config(
        ExporterConfig,
        path,
        environ,
        lambda config: [
            lambda: check_artifact_paths(config, str(path) if path else "<defaults>"),
            config.redis_password,
            config.airflow.read_password,
            config.seatunnel.read_password,
            config.kubernetes.check,
            config.lineage.read_token,
        ],
    )
    # The catalog's secret files (consumer probe tokens), now that it is loaded.
    read_tokens(config.providers)
    return config


__all__ = ["ConfigError", "ExporterConfig", "load_config"]
