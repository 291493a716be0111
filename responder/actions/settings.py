"""Settings of the runbook's actions: the ``actions:`` section of responder.yml.

Defaults are the runbook's own values (sections 3 and 5), so an empty
``actions: {}`` section reproduces the runbook; only endpoints and secrets
need to be supplied per environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedguard.core.airflow import AirflowSettings
from feedguard.core.kube_names import check_k8s_name
from feedguard.core.schema import check_http_url, check_name, check_positive, field
from feedguard.core.seatunnel import SeaTunnelSettings


def _check_configmap_key(value: str) -> str | None:
    ok = 0 < len(value) <= 253 and all(c.isalnum() or c in "-._" for c in value)
    return (
        None if ok else f"must be a ConfigMap key (letters, digits, '-', '_', '.'), got {value!r}"
    )


@dataclass(frozen=True)
class KubernetesSettings:
    """Where the API rate limit lives (runbook 3.1) and how to reach the cluster.

    Connection: ``host`` (+ ``token``) when set, else the in-cluster service
    account when ``in_cluster`` is true, else a kubeconfig file.
    """

    namespace: str = field("aurum-dev", check=check_k8s_name)
    configmap: str = field("aurum-api-config", check=check_k8s_name)
    key: str = field("AURUM_API_RATE_LIMIT_RPS", check=_check_configmap_key)
    value: str = field("50", doc="the throttled rate limit written during an incident")
    in_cluster: bool = False
    kubeconfig: str | None = field(None, doc="path; default ~/.kube/config or $KUBECONFIG")
    context: str | None = None
    host: str | None = field(None, check=check_http_url, doc="explicit API server URL")
    token: str | None = field(None, doc="bearer token for host; prefer the env or token_file")
    token_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    timeout_seconds: float = field(10.0, check=check_positive)
    field_manager: str = field("feedguard-responder", check=check_name)


@dataclass(frozen=True)
class RuntimeConfigSettings:
    """The platform's runtime-config admin API (runbook 3.3 and 5.5: ``$AURUM_API``)."""

    base_url: str | None = field(None, check=check_http_url, doc="$AURUM_API of the runbook")
    token: str | None = field(None, doc="bearer token; prefer the env or token_file")
    token_file: str | None = None
    feature: str = field("external_read_cache", check=check_name)
    ttl_seconds: int = field(900, check=check_positive)
    timeout_seconds: float = field(10.0, check=check_positive)


@dataclass(frozen=True)
class StreamingSettings:
    """pause_streaming: where job configs live and how long a savepoint may take."""

    # The runbook's seatunnel/jobs/templates/*.conf.tmpl: <name>.conf.tmpl per job,
    # unless the catalog gives the job a config_file.
    job_templates_dir: str = "seatunnel/jobs/templates"
    # Within one attempt (executor.timeout_seconds bounds the whole step).
    savepoint_timeout_seconds: float = field(20.0, check=check_positive)
    poll_seconds: float = field(1.0, check=check_positive)


@dataclass(frozen=True)
class ActionsSettings:
    # The exporter's Airflow settings (base_url, version, username, password);
    # the actions ignore its collector fields (enabled, runs_window, concurrency).
    airflow: AirflowSettings = field(default_factory=AirflowSettings)
    kubernetes: KubernetesSettings = KubernetesSettings()
    runtime_config: RuntimeConfigSettings = RuntimeConfigSettings()
    fallback_dag: str = field("external_data_fallback", check=check_name)
    backfill_dag: str = field("external_data_backfill", check=check_name)
    # SeaTunnel REST API v2 for pause_streaming (its "enabled" is the exporter's, ignored here).
    seatunnel: SeaTunnelSettings = field(default_factory=SeaTunnelSettings)
    streaming: StreamingSettings = StreamingSettings()
