"""The runbook's actions (runbook sections 3 and 5), one module per action.

``open_actions`` is the only entry point the core uses: it creates the clients
(Kubernetes API, Airflow, runtime-config HTTP session) and yields the actions by
playbook name; leaving the context closes the clients.  Given ``checks``, it
registers each client's start-up check with the actions that use it
(responder/clients.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import aiohttp

from feedguard.core.airflow import AirflowClient
from feedguard.core.catalog import Catalog
from feedguard.core.schema import read_secret
from feedguard.core.seatunnel import SeaTunnelClient
from feedguard.core.tracing import Tracing

from ..clients import ClientChecks
from ..plugins import Action
from .disable_feeds import DisableFeeds
from .kube import ConfigMapClient
from .pause_dags import PauseDags
from .pause_streaming import PauseStreaming
from .read_cache import ReadCache
from .reduce_batch_size import ReduceBatchSize
from .runtime_config import RuntimeConfigClient
from .settings import ActionsSettings
from .throttle_api import ThrottleApi
from .trigger_backfill import TriggerBackfill
from .trigger_fallback import TriggerFallback

ACTION_NAMES = (
    "throttle_api",
    "pause_dags",
    "pause_streaming",
    "read_cache",
    "reduce_batch_size",
    "disable_feeds",
    "trigger_fallback",
    "trigger_backfill",
)


@contextlib.asynccontextmanager
async def open_actions(
    settings: ActionsSettings,
    catalog: Catalog,
    tracing: Tracing | None = None,
    checks: ClientChecks | None = None,
) -> AsyncIterator[Mapping[str, Action]]:
    """``tracing``: the clients' calls become child spans of the step running them."""
    tracing = tracing or Tracing.off()
    # Secrets are read once here, so a missing token file fails start-up, not an incident.
    runtime_token = read_secret(
        settings.runtime_config.token, settings.runtime_config.token_file, "runtime-config token"
    )
    airflow_password = settings.airflow.read_password()
    seatunnel_password = settings.seatunnel.read_password()
    configmaps = ConfigMapClient(settings.kubernetes, tracing)
    session = aiohttp.ClientSession(raise_for_status=False, trace_configs=tracing.trace_configs())
    try:
        airflow = AirflowClient(session, settings.airflow, password=airflow_password)
        runtime = RuntimeConfigClient(
            session,
            settings.runtime_config.base_url,
            runtime_token,
            settings.runtime_config.timeout_seconds,
        )
        seatunnel = SeaTunnelClient(session, settings.seatunnel, password=seatunnel_password)
        streaming = settings.streaming
        actions: dict[str, Action] = {
            ThrottleApi.name: ThrottleApi(configmaps, settings.kubernetes),
            PauseDags.name: PauseDags(airflow),
            PauseStreaming.name: PauseStreaming(
                seatunnel,
                streaming.job_templates_dir,
                streaming.savepoint_timeout_seconds,
                streaming.poll_seconds,
            ),
            ReadCache.name: ReadCache(runtime, settings.runtime_config),
            ReduceBatchSize.name: ReduceBatchSize(runtime, settings.runtime_config),
            DisableFeeds.name: DisableFeeds(airflow, catalog, settings.provider_config_variable),
            TriggerFallback.name: TriggerFallback(airflow, settings.fallback_dag),
            TriggerBackfill.name: TriggerBackfill(airflow, settings.backfill_dag),
        }
        if checks is not None:
            kube = settings.kubernetes
            checks.add(
                "kubernetes",
                lambda: configmaps.warm_up(kube.namespace, kube.configmap),
                [ThrottleApi.name],
            )
            checks.add(
                "airflow",
                airflow.check,
                [PauseDags.name, DisableFeeds.name, TriggerFallback.name, TriggerBackfill.name],
            )
            feature = settings.runtime_config.feature
            checks.add(
                "runtime_config",
                lambda: runtime.check(feature),
                [ReadCache.name, ReduceBatchSize.name],
            )
        yield actions
    finally:
        await session.close()
        await configmaps.close()
