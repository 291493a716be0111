"""The exporter's one frozen configuration object, from YAML plus FEEDGUARD_* overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import Field

from feedguard.core.airflow_api import AirflowSettings
from feedguard.core.catalog import Catalog
from feedguard.core.http_hardening import HttpSettings
from feedguard.core.kube import KubeReadSettings
from feedguard.core.schema import (
    NO_ENV,
    ConfigError,
    ConfigModel,
    Listen,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ServiceSettings,
)
from feedguard.core.seatunnel import SeaTunnelSettings
from feedguard.core.service_config import load_service_config
from feedguard.core.settings import LogSettings, RedisSettings
from feedguard.core.tracing import TracingSettings

from .collectors.consumers import read_tokens
from .collectors.dbt import DbtSettings
from .collectors.quality import QualitySettings
from .lineage.settings import LineageSettings

DEFAULT_LISTEN = "127.0.0.1:9816"
_CATALOG_FILE = "config/external_providers.yml"


class ScrapeSettings(ConfigModel):
    # Used when a request carries no X-Prometheus-Scrape-Timeout-Seconds header
    # (curl, a browser): Prometheus' own default scrape timeout.
    default_timeout_seconds: PositiveFloat = 10.0
    # Kept back from Prometheus' timeout for rendering and the network.
    deadline_margin_seconds: NonNegativeFloat = 0.5
    max_timeout_seconds: PositiveFloat = 60.0


class ProbeSettings(ConfigModel):
    enabled: bool = True
    concurrency: PositiveInt = 32
    user_agent: str = "feedguard-exporter/0.1 (+health probe)"
    # Lifetime of feedguard:probe:failing_since:<provider>, refreshed by every failing
    # scrape: longer than the scrape interval, short enough that an onset does not
    # outlive an exporter that stopped probing by much (docs/exporter.md#probe-onset).
    onset_ttl_seconds: PositiveInt = 600


class ExporterConfig(ServiceSettings):
    listen: Listen = DEFAULT_LISTEN
    catalog_file: str = _CATALOG_FILE
    # An inline catalog wins over catalog_file (handy for tests and one-file set-ups).
    catalog: Annotated[Catalog | None, NO_ENV] = None
    redis: RedisSettings = Field(default_factory=RedisSettings)
    scrape: ScrapeSettings = Field(default_factory=ScrapeSettings)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    # Rate limit and gzip of this service's own HTTP (docs/exporter.md#http-hardening).
    http: HttpSettings = Field(default_factory=HttpSettings)
    # Off by default (enabled: false); docs/collectors.md.
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    dbt: DbtSettings = Field(default_factory=DbtSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    seatunnel: SeaTunnelSettings = Field(default_factory=SeaTunnelSettings)
    # Credential Secrets' metadata (catalog credentials); off by default.
    kubernetes: KubeReadSettings = Field(default_factory=KubeReadSettings)
    # POST /api/v1/lineage, off by default; docs/lineage.md.
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    # OpenTelemetry traces over OTLP/HTTP, off by default (docs/exporter.md#traces).
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    log: LogSettings = Field(default_factory=LogSettings)

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
            config.tracing.read_headers,
        ],
    )
    # The catalog's secret files (consumer probe tokens), now that it is loaded.
    read_tokens(config.providers)
    return config


__all__ = ["ConfigError", "ExporterConfig", "load_config"]
