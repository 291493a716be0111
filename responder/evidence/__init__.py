"""Incident evidence (runbook 4): workload logs and credential metadata, read-only.

``open_evidence`` is what the app uses: it yields the gatherer (or None when
switched off) and closes its Kubernetes session on the way out.  The
connection is the actions' (``actions.kubernetes``), built on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from feedguard.core.kube import KubeConnection, KubeReader
from feedguard.core.schema import read_secret

from ..actions.kube import build_api_client
from ..actions.settings import KubernetesSettings
from .gather import EvidenceGatherer
from .settings import EvidenceSettings

__all__ = ["EvidenceGatherer", "EvidenceSettings", "connection", "open_evidence"]


def connection(settings: KubernetesSettings) -> KubeConnection:
    """host (+ token), else the in-cluster account, else the kubeconfig. Blocking."""
    timeout = settings.timeout_seconds
    if settings.host:
        return KubeConnection(
            host=settings.host,
            token=read_secret(settings.token, settings.token_file, "Kubernetes token"),
            ca_file=settings.ca_file,
            verify_ssl=settings.verify_ssl,
            timeout_seconds=timeout,
        )
    if settings.in_cluster:
        return KubeConnection.in_cluster(timeout)
    client = build_api_client(settings)
    try:
        conf = client.configuration
        token = (conf.api_key or {}).get("authorization")
        if token and token.lower().startswith("bearer "):
            token = token[len("bearer ") :]
        return KubeConnection(
            host=conf.host,
            token=token,
            ca_file=conf.ssl_ca_cert,
            verify_ssl=bool(conf.verify_ssl),
            cert_file=conf.cert_file,
            key_file=conf.key_file,
            timeout_seconds=timeout,
        )
    finally:
        client.close()  # type: ignore[no-untyped-call]  # untyped client


@contextlib.asynccontextmanager
async def open_evidence(
    settings: EvidenceSettings, kubernetes: KubernetesSettings
) -> AsyncIterator[EvidenceGatherer | None]:
    if not settings.enabled:
        yield None
        return
    readers: list[KubeReader] = []
    lock = asyncio.Lock()

    async def reader() -> KubeReader:
        async with lock:
            if not readers:
                readers.append(KubeReader(await asyncio.to_thread(connection, kubernetes)))
            return readers[0]

    try:
        yield EvidenceGatherer(settings, reader)
    finally:
        for made in readers:
            await made.close()
