"""Settings of the runbook's actions: the ``actions:`` section of responder.yml.

Defaults are the runbook's own values (sections 3 and 5), so an empty
``actions: {}`` section reproduces the runbook; only endpoints and secrets
need to be supplied per environment.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from feedguard.core.airflow_api import AirflowSettings
from feedguard.core.kube_names import K8sName
from feedguard.core.schema import (
    ConfigModel,
    HttpUrl,
    Name,
    PositiveFloat,
    PositiveInt,
    Secret,
    check,
)
from feedguard.core.seatunnel import SeaTunnelSettings


def _check_configmap_key(value: str) -> str | None:
    ok = 0 < len(value) <= 253 and all(c.isalnum() or c in "-._" for c in value)
    return (
        None if ok else f"must be a ConfigMap key (letters, digits, '-', '_', '.'), got {value!r}"
    )


class KubernetesSettings(ConfigModel):
    """Where the API rate limit lives (runbook 3.1) and how to reach the cluster.

    Connection: ``host`` (+ ``token``) when set, else the in-cluster service
    account when ``in_cluster`` is true, else a kubeconfig file.
    """

    namespace: K8sName = "aurum-dev"
    configmap: K8sName = "aurum-api-config"
    key: Annotated[str, check(_check_configmap_key)] = "AURUM_API_RATE_LIMIT_RPS"
    value: str = Field("50", description="the throttled rate limit written during an incident")
    in_cluster: bool = False
    kubeconfig: str | None = Field(None, description="path; default ~/.kube/config or $KUBECONFIG")
    context: str | None = None
    host: HttpUrl | None = Field(None, description="explicit API server URL")
    token: Secret = Field(None, description="bearer token for host; prefer the env or token_file")
    token_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    timeout_seconds: PositiveFloat = 10.0
    field_manager: Name = "feedguard-responder"


class RuntimeConfigSettings(ConfigModel):
    """The platform's runtime-config admin API (runbook 3.3 and 5.5: ``$AURUM_API``)."""

    base_url: HttpUrl | None = Field(None, description="$AURUM_API of the runbook")
    token: Secret = Field(None, description="bearer token; prefer the env or token_file")
    token_file: str | None = None
    feature: Name = "external_read_cache"
    ttl_seconds: PositiveInt = 900
    timeout_seconds: PositiveFloat = 10.0
    # reduce_batch_size (runbook 4: ``external_ingest.batch_size=500``): the value
    # ``batch_size_key`` in the configuration of feature ``batch_size_feature``.
    batch_size_feature: Name = "external_ingest"
    batch_size_key: Name = "batch_size"
    batch_size: PositiveInt = 500


class StreamingSettings(ConfigModel):
    """pause_streaming: where job configs live and how long a savepoint may take."""

    # The runbook's seatunnel/jobs/templates/*.conf.tmpl: <name>.conf.tmpl per job,
    # unless the catalog gives the job a config_file.
    job_templates_dir: str = "seatunnel/jobs/templates"
    # Within one attempt (executor.timeout_seconds bounds the whole step).
    savepoint_timeout_seconds: PositiveFloat = 20.0
    poll_seconds: PositiveFloat = 1.0


class ActionsSettings(ConfigModel):
    # The exporter's Airflow settings (base_url, version, username, password);
    # the actions ignore its collector fields (enabled, runs_window, concurrency).
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    runtime_config: RuntimeConfigSettings = Field(default_factory=RuntimeConfigSettings)
    fallback_dag: Name = "external_data_fallback"
    backfill_dag: Name = "external_data_backfill"
    # disable_feeds (runbook 4): the Airflow Variable the pipelines read the catalog from.
    provider_config_variable: Name = "external_provider_config"
    # SeaTunnel REST API v2 for pause_streaming (its "enabled" is the exporter's, ignored here).
    seatunnel: SeaTunnelSettings = Field(default_factory=SeaTunnelSettings)
    streaming: StreamingSettings = Field(default_factory=StreamingSettings)
