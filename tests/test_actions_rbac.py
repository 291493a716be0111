"""deploy/base/rbac.yaml is least privilege, and exactly enough for throttle_api."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from feedguard.responder.actions.kube import ConfigMapClient
from feedguard.responder.actions.settings import KubernetesSettings
from feedguard.responder.actions.throttle_api import ThrottleApi

from .support.action_context import context
from .support.fake_kubernetes import FakeKubernetes

RBAC = Path(__file__).resolve().parent.parent / "deploy" / "base" / "rbac.yaml"


def documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(RBAC.read_text())}


def test_manifest_grants_get_and_patch_on_one_configmap_only() -> None:
    docs = documents()
    assert set(docs) == {"ServiceAccount", "Role", "RoleBinding"}
    account = docs["ServiceAccount"]["metadata"]
    assert (account["name"], account["namespace"]) == ("feedguard-responder", "aurum-dev")
    role = docs["Role"]
    assert role["metadata"]["namespace"] == "aurum-dev"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["aurum-api-config"],
            "verbs": ["get", "patch"],
        }
    ]
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "feedguard-responder", "namespace": "aurum-dev"}
    ]


async def test_throttle_needs_no_more_than_the_role() -> None:
    (rule,) = documents()["Role"]["rules"]
    fake = FakeKubernetes()
    fake.grant(
        "sa-token",
        verbs=rule["verbs"],
        names=[("aurum-dev", name) for name in rule["resourceNames"]],
    )
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
