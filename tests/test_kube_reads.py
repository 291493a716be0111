"""The read-only Kubernetes client (pods, logs, Secret metadata) and the credentials collector."""

from __future__ import annotations

import time

import pytest

from feedguard.core.kube import METADATA_ONLY, KubeConnection, KubeError, KubeReader
from feedguard.exporter.collectors.base import Deadline
from feedguard.exporter.collectors.credentials import CredentialsCollector

from .conftest import make_catalog
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_kubernetes_reads import rfc3339
from .support.families import samples, value

# The fake API server's clock: the real one, so ages computed with time.time() agree.
NOW = float(int(time.time()))
EXPIRES = NOW + 3 * 86400
SECRET_VALUE = "sk-live-0123456789abcdef"


def fake_cluster() -> FakeKubernetes:
    fake = FakeKubernetes(now=NOW)
    fake.allow("sa", "pods", ["list"], namespaces=["aurum-dev"])
    fake.allow("sa", "pods/log", ["get"], namespaces=["aurum-dev"])
    fake.allow(
        "sa", "secrets", ["get"], namespaces=["aurum-dev"], names=["external-provider-iso-ne"]
    )
    fake.add_pod("aurum-dev", "collector-a", {"app": "external-collector"})
    fake.add_pod(
        "aurum-dev",
        "collector-b",
        {"app": "external-collector"},
        containers=("collector", "sidecar"),
        ready=False,
        restarts=4,
        last_terminated="OOMKilled",
        waiting="CrashLoopBackOff",
    )
    fake.add_pod("aurum-dev", "other", {"app": "api"})
    fake.add_secret(
        "aurum-dev",
        "external-provider-iso-ne",
        {"api_key": SECRET_VALUE},
        created=NOW - 90 * 86400,
        modified=[("kubectl-create", NOW - 90 * 86400), ("vault-sync", NOW - 720)],
        annotations={"feedguard.io/expires-at": rfc3339(EXPIRES)},
    )
    return fake


async def test_pods_by_selector_with_readiness_and_restarts() -> None:
    fake = fake_cluster()
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="sa"))
        try:
            pods = await reader.list_pods("aurum-dev", "app=external-collector")
            assert await reader.list_pods("aurum-dev", "app!=external-collector") != pods
        finally:
            await reader.close()
    assert [p.name for p in pods] == ["collector-a", "collector-b"]
    a, b = pods
    assert (a.ready, a.restarts, a.phase) == (True, 0, "Running")
    assert (b.ready, b.restarts) == (False, 8)  # 4 per container, two containers
    assert b.containers == ("collector", "sidecar")
    assert b.last_terminated == {"collector": "OOMKilled", "sidecar": "OOMKilled"}
    assert b.waiting["collector"] == "CrashLoopBackOff"
    assert "labelSelector=app%3Dexternal-collector" in fake.reads[0][1]


async def test_pod_log_query_parameters_are_applied_in_the_kubelets_order() -> None:
    fake = fake_cluster()
    for minute in range(40):
        fake.add_log("aurum-dev", "collector-a", "main", NOW - 60 * (40 - minute), f"line {minute}")
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="sa"))
        try:
            text = await reader.pod_log(
                "aurum-dev",
                "collector-a",
                "main",
                since_seconds=1800,
                limit_bytes=10_000,
                tail_lines=5,
            )
            short = await reader.pod_log(
                "aurum-dev", "collector-a", "main", since_seconds=1800, limit_bytes=40, tail_lines=5
            )
            with pytest.raises(KubeError, match="must be at least 1") as bad:
                await reader.pod_log(
                    "aurum-dev", "collector-a", "main", since_seconds=0, limit_bytes=1, tail_lines=1
                )
            assert bad.value.status == 400
            with pytest.raises(KubeError, match="container nope is not valid"):
                await reader.pod_log(
                    "aurum-dev",
                    "collector-a",
                    "nope",
                    since_seconds=60,
                    limit_bytes=1,
                    tail_lines=1,
                )
        finally:
            await reader.close()
    lines = text.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [f"line {m}" for m in range(35, 40)]
    assert lines[0].startswith("20")  # timestamps=true: RFC 3339 first
    assert len(short.encode()) == 40
    query = fake.reads[0][1]
    for part in ("sinceSeconds=1800", "limitBytes=10000", "tailLines=5", "container=main"):
        assert part in query


async def test_secret_metadata_only_never_the_data() -> None:
    fake = fake_cluster()
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="sa"))
        try:
            meta = await reader.secret_metadata(
                "aurum-dev", "external-provider-iso-ne", "feedguard.io/expires-at"
            )
            with pytest.raises(KubeError, match="forbidden") as denied:
                await reader.secret_metadata("aurum-dev", "external-provider-eia")
            assert denied.value.status == 403
        finally:
            await reader.close()
    assert meta.created_at == NOW - 90 * 86400
    assert meta.modified_at == NOW - 720
    assert meta.modified_by == "vault-sync"
    assert meta.changed_at == NOW - 720
    assert meta.expires_at == EXPIRES
    assert SECRET_VALUE not in repr(meta)
    assert {accept for _, accept in fake.secret_reads()} == {METADATA_ONLY}


async def test_the_fake_serves_data_to_a_plain_accept_and_406_to_an_unknown_as() -> None:
    """The fake follows the API server: it is the client's Accept that keeps data away."""
    import aiohttp

    fake = fake_cluster()
    async with fake.serve() as url, aiohttp.ClientSession() as session:
        path = url + "/api/v1/namespaces/aurum-dev/secrets/external-provider-iso-ne"
        headers = {"Authorization": "Bearer sa"}
        async with session.get(path, headers=headers) as plain:
            assert (await plain.json())["kind"] == "Secret"
        odd = {**headers, "Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"}
        async with session.get(path, headers=odd) as refused:
            assert refused.status == 406
        async with session.get(path, headers={**headers, "Accept": METADATA_ONLY}) as meta:
            body = await meta.json()
    assert body["kind"] == "PartialObjectMetadata"
    assert "data" not in body


async def test_credentials_collector_publishes_age_and_expiry() -> None:
    fake = fake_cluster()
    catalog = make_catalog(
        {
            "ISO-NE": {
                "credentials": [
                    {
                        "namespace": "aurum-dev",
                        "name": "external-provider-iso-ne",
                        "expiry_annotation": "feedguard.io/expires-at",
                    },
                    {"namespace": "aurum-dev", "name": "external-provider-eia"},
                ]
            }
        }
    )
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="sa"))
        try:
            found = samples(
                await CredentialsCollector(reader, catalog).collect(Deadline.in_seconds(5))
            )
        finally:
            await reader.close()
    labels = {"provider": "ISO-NE", "namespace": "aurum-dev", "secret": "external-provider-iso-ne"}
    age = value(found, "external_provider_credential_age_seconds", **labels)
    assert age is not None
    assert age >= 720
    assert value(found, "external_provider_credential_expiry_timestamp", **labels) == EXPIRES
    assert value(found, "external_provider_credential_metadata_readable", **labels) == 1
    eia = {**labels, "secret": "external-provider-eia"}
    assert value(found, "external_provider_credential_metadata_readable", **eia) == 0
    assert value(found, "external_provider_credential_age_seconds", **eia) is None


async def test_an_answer_that_is_not_metadata_only_is_refused_unread() -> None:
    fake = fake_cluster()
    fake.ignore_accept_params = True
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="sa"))
        try:
            with pytest.raises(KubeError, match="did not answer metadata only") as refused:
                await reader.secret_metadata("aurum-dev", "external-provider-iso-ne")
        finally:
            await reader.close()
    assert SECRET_VALUE not in str(refused.value)
    assert "c2stbGl2ZS" not in str(refused.value)  # nor its base64


def test_exporter_settings_errors_name_the_key() -> None:
    from feedguard.core.schema import ConfigError
    from feedguard.exporter.config import load_config

    from .conftest import REPO

    path = REPO / "config" / "exporter.yml"
    with pytest.raises(ConfigError) as bad:
        load_config(
            path,
            {
                "FEEDGUARD_KUBERNETES_ENABLED": "true",
                "FEEDGUARD_SEATUNNEL_CONTEXT_PATH": "seatunnel/",
            },
        )
    assert sorted(bad.value.errors) == [
        f"{path}: kubernetes.host: Kubernetes is enabled but neither host nor in_cluster is set",
        "env FEEDGUARD_SEATUNNEL_CONTEXT_PATH: seatunnel.context_path: must be empty or a path "
        "such as /seatunnel (no trailing '/'), got 'seatunnel/'",
    ]
