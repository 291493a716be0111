"""``lineage:`` in the exporter's settings: the OpenLineage intake, off by default."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from feedguard.core.schema import (
    ConfigError,
    ConfigModel,
    PositiveInt,
    Secret,
    check,
    invalid,
    read_secret,
)

MiB = 1024 * 1024


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


class LineageSettings(ConfigModel):
    enabled: bool = False
    # Required when enabled: a forged COMPLETE would hide a real outage.
    bearer_token: Secret = Field(None, description="prefer FEEDGUARD_LINEAGE_BEARER_TOKEN")
    bearer_token_file: str | None = None
    max_body_bytes: PositiveInt = MiB
    # The run-conf key naming the provider (Airflow: dags trigger --conf '{"provider": ...}').
    provider_conf_key: Annotated[str, check(_not_empty)] = "provider"
    # How long a counted FAIL/ABORT is remembered, so a re-delivery is not counted again.
    seen_ttl_seconds: PositiveInt = 7 * 86400

    @model_validator(mode="after")
    def _token_when_enabled(self) -> LineageSettings:
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
        return self

    def read_token(self) -> str | None:
        token = read_secret(self.bearer_token, self.bearer_token_file, "lineage bearer token")
        if self.enabled and not token:
            where = self.bearer_token_file or "FEEDGUARD_LINEAGE_BEARER_TOKEN"
            raise ConfigError([f"{where}: lineage.bearer_token: must not be empty"])
        return token
