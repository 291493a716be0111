"""deploy/base/rbac.yaml is least privilege, and exactly enough for what feedguard does:
throttle_api's ConfigMap, the evidence's pods, logs and Secret metadata, the
exporter's credential metadata."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedguard.core.catalog import Catalog, load_catalog
from feedguard.core.kube import KubeConnection, KubeError, KubeReader
from feedguard.exporter.collectors.base import Deadline
from feedguard.exporter.collectors.credentials import CredentialsCollector
from feedguard.responder.actions.kube import ConfigMapClient
from feedguard.responder.actions.settings import KubernetesSettings
from feedguard.responder.actions.throttle_api import ThrottleApi
from feedguard.responder.evidence import EvidenceGatherer, EvidenceSettings

from .support.action_context import context
from .support.fake_kubernetes import FakeKubernetes
from .support.families import samples, value

REPO = Path(__file__).resolve().parent.parent
RBAC = REPO / "deploy" / "base" / "rbac.yaml"
CATALOG: Catalog = load_catalog(REPO / "config" / "external_providers.yml")
Doc = dict[str, Any]


def documents() -> list[Doc]:
    return list(yaml.safe_load_all(RBAC.read_text()))


def named(kind: str, name: str) -> Doc:
    (doc,) = (d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name)
    return doc


def bound_to(account: str) -> list[Doc]:
    """The Roles bound to a ServiceAccount."""
    return [
        named("Role", binding["roleRef"]["name"])
        for binding in documents()
        if binding["kind"] == "RoleBinding"
        and {s["name"] for s in binding["subjects"]} == {account}
    ]


def grant(fake: FakeKubernetes, token: str, roles: list[Doc]) -> None:
    """Give ``token`` exactly the rules of ``roles`` (each in its namespace)."""
    for role in roles:
        namespace = role["metadata"]["namespace"]
        for rule in role["rules"]:
            for resource in rule["resources"]:
                if resource == "configmaps":
                    names = [(namespace, n) for n in rule["resourceNames"]]
                    fake.grant(token, verbs=rule["verbs"], names=names)
                else:
                    fake.allow(
                        token, resource, rule["verbs"], [namespace], rule.get("resourceNames")
                    )


def test_manifest_has_the_accounts_roles_and_bindings_it_needs() -> None:
    kinds = defaultdict(set)
    for doc in documents():
        kinds[doc["kind"]].add(doc["metadata"]["name"])
        assert doc["metadata"].get("namespace", "aurum-dev") == "aurum-dev"
    assert kinds == {
        "ServiceAccount": {"feedguard-responder", "feedguard-exporter"},
        "Role": {
            "feedguard-responder-rate-limit",
            "feedguard-responder-evidence",
            "feedguard-exporter-credentials",
        },
        "RoleBinding": {
            "feedguard-responder-rate-limit",
            "feedguard-responder-evidence",
            "feedguard-exporter-credentials",
        },
    }
    for binding in (d for d in documents() if d["kind"] == "RoleBinding"):
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": binding["metadata"]["name"],
        }
    assert named("Role", "feedguard-responder-rate-limit")["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["aurum-api-config"],
            "verbs": ["get", "patch"],
        }
    ]


def test_evidence_rules_are_exactly_what_the_catalog_needs() -> None:
    """list pods and get pods/log in the workloads' namespaces; get the named Secrets."""
    namespaces = {w.namespace for p in CATALOG.enabled for w in p.workloads}
    secrets: dict[str, set[str]] = defaultdict(set)
    for _, secret in CATALOG.credentials():
        secrets[secret.namespace].add(secret.name)
    roles = [
        r for r in bound_to("feedguard-responder") if r["metadata"]["name"].endswith("evidence")
    ]
    assert {r["metadata"]["namespace"] for r in roles} == namespaces | set(secrets)
    for role in roles:
        namespace = role["metadata"]["namespace"]
        expected = []
        if namespace in namespaces:
            expected += [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            ]
        if secrets.get(namespace):
            expected.append(
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": sorted(secrets[namespace]),
                    "verbs": ["get"],
                }
            )
        assert role["rules"] == expected
    (exporter,) = bound_to("feedguard-exporter")
    assert exporter["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": sorted(n for names in secrets.values() for n in names),
            "verbs": ["get"],
        }
    ]


async def test_throttle_needs_no_more_than_the_role() -> None:
    fake = FakeKubernetes()
    grant(fake, "sa-token", [named("Role", "feedguard-responder-rate-limit")])
    fake.put("aurum-dev", "aurum-api-config", {"AURUM_API_RATE_LIMIT_RPS": "120"})
    async with fake.serve() as url:
        settings = KubernetesSettings(host=url, token="sa-token")
        client = ConfigMapClient(settings)
        action = ThrottleApi(client, settings)
        ctx = context()
        (target,) = action.targets(ctx)
        try:
            outcome = await action.apply(ctx, target)
            assert fake.data("aurum-dev", "aurum-api-config") == {"AURUM_API_RATE_LIMIT_RPS": "50"}
            await action.revert(ctx, target, outcome.previous)
        finally:
            await client.close()
    assert fake.data("aurum-dev", "aurum-api-config") == {"AURUM_API_RATE_LIMIT_RPS": "120"}
    assert {method for method, *_ in fake.requests} == {"GET", "PATCH"}


def seeded_cluster() -> FakeKubernetes:
    """The seed catalog's workloads and Secrets, plus objects it must not reach."""
    fake = FakeKubernetes()
    for provider in CATALOG.enabled:
        for workload in provider.workloads:
            labels = dict(term.split("=", 1) for term in workload.selector.split(","))
            fake.add_pod(workload.namespace, f"{provider.name.lower()}-collector", labels)
        for secret in provider.credentials:
            fake.add_secret(secret.namespace, secret.name, {"k": "v"}, created=1.7e9)
    fake.add_secret("aurum-dev", "aurum-db-password", {"password": "p"}, created=1.7e9)
    return fake


async def test_evidence_needs_no_more_than_the_role() -> None:
    fake = seeded_cluster()
    grant(fake, "sa-token", bound_to("feedguard-responder"))
    provider = CATALOG.require("ISO-NE")
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="sa-token"))

        async def opened() -> KubeReader:
            return reader

        try:
            gatherer = EvidenceGatherer(EvidenceSettings(), opened)
            found = await gatherer.gather(provider, context(provider).incident, 1.8e9)
            with pytest.raises(KubeError, match="HTTP 403"):  # any other Secret is forbidden
                await reader.secret_metadata("aurum-dev", "aurum-db-password")
        finally:
            await reader.close()
    (workload,) = found["workloads"]
    assert "error" not in workload
    assert workload["log_errors"] == []
    assert all("error" not in c for c in found["credentials"])


async def test_exporter_credentials_need_no_more_than_its_role() -> None:
    fake = seeded_cluster()
    grant(fake, "exporter-token", bound_to("feedguard-exporter"))
    async with fake.serve() as url:
        reader = KubeReader(KubeConnection(host=url, token="exporter-token"))
        try:
            collector = CredentialsCollector(reader, CATALOG)
            found = samples(await collector.collect(Deadline.in_seconds(5)))
        finally:
            await reader.close()
    for provider, secret in CATALOG.credentials():
        labels = {"provider": provider, "namespace": secret.namespace, "secret": secret.name}
        assert value(found, "external_provider_credential_metadata_readable", **labels) == 1
