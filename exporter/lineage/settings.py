"""``lineage:`` in the exporter's settings: the OpenLineage intake, off by default."""

from __future__ import annotations

from dataclasses import dataclass

from feedguard.core.schema import ConfigError, check_positive, field, invalid, read_secret

MiB = 1024 * 1024


@dataclass(frozen=True)
class LineageSettings:
    enabled: bool = False
    # Required when enabled: a forged COMPLETE would hide a real outage.
    bearer_token: str | None = field(None, doc="prefer FEEDGUARD_LINEAGE_BEARER_TOKEN")
    bearer_token_file: str | None = None
    max_body_bytes: int = field(MiB, check=check_positive)
    # The run-conf key naming the provider (Airflow: dags trigger --conf '{"provider": ...}').
    provider_conf_key: str = field(
        "provider", check=lambda v: None if str(v).strip() else "must not be empty"
    )
    # How long a counted FAIL/ABORT is remembered, so a re-delivery is not counted again.
    seen_ttl_seconds: int = field(7 * 86400, check=check_positive)

    def __post_init__(self) -> None:
        if self.enabled and self.bearer_token is None and self.bearer_token_file is None:
            invalid(
                [
                    (
                        "bearer_token",
                        "required when lineage.enabled is true: set "
                        "FEEDGUARD_LINEAGE_BEARER_TOKEN or lineage.bearer_token_file",
                    )
                ]
            )

    def read_token(self) -> str | None:
        token = read_secret(self.bearer_token, self.bearer_token_file, "lineage bearer token")
        if self.enabled and not token:
            where = self.bearer_token_file or "FEEDGUARD_LINEAGE_BEARER_TOKEN"
            raise ConfigError([f"{where}: lineage.bearer_token: must not be empty"])
        return token
