"""Credential Secrets' age and expiry from their metadata (runbook 4: "Validate credentials").

One ``GET`` per catalog Secret with ``Accept: ...;as=PartialObjectMetadata``
(feedguard.core.kube): the API server sends the metadata alone, never the
Secret's data. Age counts from the last change (the newest ``managedFields``
time, else ``creationTimestamp``); the expiry comes from the Secret's
``expiry_annotation`` when the catalog names one.

A Secret that cannot be read (403, 404, ...) gets ``..._metadata_readable 0``
and a log line; the collector fails only when none could be read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from feedguard.core.catalog import Catalog
from feedguard.core.kube import KubeError, KubeReader, SecretMetadata
from feedguard.core.log import get_logger

from .base import Deadline

log = get_logger(__name__)


class CredentialsCollector:
    name = "credentials"

    def __init__(self, reader: KubeReader, catalog: Catalog) -> None:
        self._reader = reader
        self._secrets = catalog.credentials()

    async def _read(self, namespace: str, name: str, annotation: str | None) -> SecretMetadata:
        return await self._reader.secret_metadata(namespace, name, annotation)

    async def collect(self, deadline: Deadline) -> Sequence[Metric]:
        results = await asyncio.gather(
            *(self._read(s.namespace, s.name, s.expiry_annotation) for _, s in self._secrets),
            return_exceptions=True,
        )
        now = time.time()
        labels = ["provider", "namespace", "secret"]
        age = GaugeMetricFamily(
            "external_provider_credential_age_seconds",
            "Seconds since the credential Secret last changed (managedFields, else creation).",
            labels=labels,
        )
        expiry = GaugeMetricFamily(
            "external_provider_credential_expiry_timestamp",
            "When the credential expires (epoch seconds), from its expiry annotation.",
            labels=labels,
        )
        readable = GaugeMetricFamily(
            "external_provider_credential_metadata_readable",
            "1 when the Secret's metadata could be read this scrape.",
            labels=labels,
        )
        failures = 0
        for (provider, secret), result in zip(self._secrets, results, strict=True):
            key = [provider, secret.namespace, secret.name]
            if isinstance(result, BaseException):
                if not isinstance(result, KubeError):
                    raise result
                failures += 1
                log.warning(
                    "credential metadata unreadable",
                    provider=provider,
                    secret=f"{secret.namespace}/{secret.name}",
                    error=str(result),
                )
                readable.add_metric(key, 0.0)
                continue
            readable.add_metric(key, 1.0)
            if result.changed_at is not None:
                age.add_metric(key, max(0.0, now - result.changed_at))
            if result.expires_at is not None:
                expiry.add_metric(key, result.expires_at)
        if self._secrets and failures == len(self._secrets):
            raise KubeError(0, f"no credential Secret's metadata could be read ({failures})")
        return [age, expiry, readable]
