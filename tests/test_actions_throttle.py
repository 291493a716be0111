"""throttle_api against a local Kubernetes API stand-in, through the real kubernetes client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from feedguard.responder.actions.kube import ConfigMapClient
from feedguard.responder.actions.settings import KubernetesSettings
from feedguard.responder.actions.throttle_api import ThrottleApi, annotation_for
from feedguard.responder.plugins import ActionError

from .support.action_context import context
from .support.fake_kubernetes import MERGE, FakeKubernetes
from .support.services import free_port

NS, CM, KEY = "aurum-dev", "aurum-api-config", "AURUM_API_RATE_LIMIT_RPS"
RESOURCE = f"k8s:configmap:{NS}/{CM}:{KEY}"
MARK = annotation_for(KEY)


@pytest.fixture
async def fake() -> FakeKubernetes:
    fake = FakeKubernetes()
    # Exactly what deploy/base/rbac.yaml grants: get and patch on one ConfigMap.
    fake.grant("good-token", names=[(NS, CM)])
    fake.grant("other-token", names=[(NS, "something-else")])
    fake.put(NS, CM, {KEY: "200", "OTHER": "x"})
    return fake


@pytest.fixture
async def url(fake: FakeKubernetes) -> AsyncIterator[str]:
    async with fake.serve() as url:
        yield url


def make_action(url: str, token: str = "good-token", **settings: object) -> ThrottleApi:
    s = KubernetesSettings(host=url, token=token, timeout_seconds=5, **settings)  # type: ignore[arg-type]
    return ThrottleApi(ConfigMapClient(s), s)


async def test_targets_name_the_configmap_key() -> None:
    action = make_action("http://127.0.0.1:1")
    (target,) = action.targets(context())
    assert target.resource == RESOURCE
    assert target.params == {"namespace": NS, "configmap": CM, "key": KEY, "value": "50"}
    (custom,) = action.targets(context(params={"value": "25"}))
    assert custom.params["value"] == "25"
    with pytest.raises(ActionError, match="unknown parameter"):
        action.targets(context(params={"rps": "25"}))


async def test_apply_patches_and_revert_restores_exactly(fake: FakeKubernetes, url: str) -> None:
    action = make_action(url)
    ctx = context()
    (target,) = action.targets(ctx)

    outcome = await action.apply(ctx, target)
    assert outcome.changed is True
    assert outcome.previous == "200"
    assert fake.data(NS, CM) == {KEY: "50", "OTHER": "x"}
    (patch,) = fake.patches()
    assert patch["data"] == {KEY: "50"}
    assert patch["metadata"]["resourceVersion"]  # optimistic concurrency
    methods = [(m, ct) for m, _, ct, _ in fake.requests if m == "PATCH"]
    assert methods == [("PATCH", MERGE)]
    annotations = fake.configmaps[(NS, CM)]["metadata"]["annotations"]
    assert json.loads(annotations[MARK])["previous"] == "200"

    # Idempotent: the second apply changes nothing and still reports "200",
    # the value from before feedguard (as after a crash before the record).
    again = await action.apply(ctx, target)
    assert again.changed is False
    assert again.previous == "200"
    assert len(fake.patches()) == 1

    restored = await action.revert(ctx, target, outcome.previous)
    assert restored.changed is True
    assert fake.data(NS, CM) == {KEY: "200", "OTHER": "x"}
    assert "annotations" not in fake.configmaps[(NS, CM)]["metadata"]
    version = fake.configmaps[(NS, CM)]["metadata"]["resourceVersion"]

    twice = await action.revert(ctx, target, outcome.previous)
    assert twice.changed is False
    assert len(fake.patches()) == 2
    assert fake.configmaps[(NS, CM)]["metadata"]["resourceVersion"] == version


async def test_absent_key_is_deleted_again(fake: FakeKubernetes, url: str) -> None:
    fake.put(NS, CM, {"OTHER": "x"})
    action = make_action(url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert outcome.previous is None
    assert fake.data(NS, CM) == {KEY: "50", "OTHER": "x"}
    await action.revert(ctx, target, None)
    assert fake.data(NS, CM) == {"OTHER": "x"}
    assert fake.patches()[-1]["data"] == {KEY: None}


async def test_value_set_by_an_operator_is_kept(fake: FakeKubernetes, url: str) -> None:
    fake.put(NS, CM, {KEY: "50"})
    action = make_action(url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    assert (outcome.changed, outcome.previous) == (False, "50")
    back = await action.revert(ctx, target, outcome.previous)
    assert back.changed is False
    assert fake.data(NS, CM) == {KEY: "50"}
    assert fake.patches() == []


async def test_operator_change_during_the_incident_is_not_clobbered(
    fake: FakeKubernetes, url: str
) -> None:
    action = make_action(url)
    ctx = context()
    (target,) = action.targets(ctx)
    outcome = await action.apply(ctx, target)
    obj = fake.configmaps[(NS, CM)]
    obj["data"][KEY] = "20"  # an operator's kubectl edit while the incident is open
    back = await action.revert(ctx, target, outcome.previous)
    assert fake.data(NS, CM)[KEY] == "20"
    assert back.left_alone == f"{KEY}='20' was changed by someone else since; kept"
    assert "annotations" not in fake.configmaps[(NS, CM)]["metadata"]


async def test_dry_run_patch_is_not_persisted(fake: FakeKubernetes, url: str) -> None:
    s = KubernetesSettings(host=url, token="good-token")
    client = ConfigMapClient(s)
    try:
        state = await client.merge_patch(NS, CM, {"data": {KEY: "1"}}, dry_run=True)
    finally:
        await client.close()
    assert state.data[KEY] == "1"
    assert fake.data(NS, CM)[KEY] == "200"
    assert "dryRun=All" in fake.requests[-1][1]


async def test_stale_resource_version_is_a_retryable_conflict(
    fake: FakeKubernetes, url: str
) -> None:
    client = ConfigMapClient(KubernetesSettings(host=url, token="good-token"))
    try:
        with pytest.raises(ActionError) as raised:
            await client.merge_patch(
                NS, CM, {"metadata": {"resourceVersion": "1"}, "data": {KEY: "1"}}
            )
    finally:
        await client.close()
    assert raised.value.status == 409
    assert raised.value.retryable is True
    assert "the object has been modified" in str(raised.value)
    assert fake.data(NS, CM)[KEY] == "200"


@pytest.mark.parametrize(
    ("token", "name", "status", "words"),
    [
        ("bad-token", CM, 401, "Unauthorized"),
        ("other-token", CM, 403, 'cannot get resource "configmaps"'),
        # Forbidden is checked before existence, as the API server does.
        ("other-token", "missing", 403, "forbidden"),
        ("good-token", "missing", 403, "forbidden"),
    ],
)
async def test_auth_errors_are_final(
    fake: FakeKubernetes, url: str, token: str, name: str, status: int, words: str
) -> None:
    action = make_action(url, token=token, configmap=name)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert raised.value.status == status
    assert raised.value.retryable is False
    assert words in str(raised.value)
    assert f"configmap {NS}/{name}" in str(raised.value)
    assert fake.patches() == []


async def test_missing_configmap_is_final(fake: FakeKubernetes, url: str) -> None:
    fake.grant("all-token")  # RBAC on every name: the missing one is then 404
    action = make_action(url, token="all-token", configmap="missing")
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (404, False)
    assert 'configmaps "missing" not found' in str(raised.value)


async def test_server_errors_and_no_server_are_retryable(fake: FakeKubernetes, url: str) -> None:
    action = make_action(url)
    ctx = context()
    (target,) = action.targets(ctx)
    fake.fail_next.append(503)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert (raised.value.status, raised.value.retryable) == (503, True)
    assert fake.data(NS, CM)[KEY] == "200"

    down = make_action(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ActionError) as raised:
        await down.apply(ctx, target)
    assert raised.value.retryable is True


async def test_missing_kubeconfig_is_a_clear_final_error(tmp_path: object) -> None:
    s = KubernetesSettings(kubeconfig="/nonexistent/kubeconfig")
    action = ThrottleApi(ConfigMapClient(s), s)
    ctx = context()
    (target,) = action.targets(ctx)
    with pytest.raises(ActionError) as raised:
        await action.apply(ctx, target)
    assert raised.value.retryable is False
    assert "Kubernetes client configuration" in str(raised.value)


async def test_fake_answers_like_the_api_server(fake: FakeKubernetes, url: str) -> None:
    """The stand-in's own fidelity: Status bodies, 415, no-op patches keep the version."""
    import aiohttp

    path = f"{url}/api/v1/namespaces/{NS}/configmaps/{CM}"
    auth = {"Authorization": "Bearer good-token"}
    async with aiohttp.ClientSession() as http:
        async with http.patch(
            path, data="[]", headers={**auth, "Content-Type": "application/json-patch+json"}
        ) as response:
            body = await response.json()
        assert response.status == 415
        assert body["kind"] == "Status"
        assert body["reason"] == "UnsupportedMediaType"
        assert set(body) == {
            "kind",
            "apiVersion",
            "metadata",
            "status",
            "message",
            "reason",
            "details",
            "code",
        }
        version = fake.configmaps[(NS, CM)]["metadata"]["resourceVersion"]
        async with http.patch(
            path, json={"data": {KEY: "200"}}, headers={**auth, "Content-Type": MERGE}
        ) as response:
            same = await response.json()
        assert same["metadata"]["resourceVersion"] == version
        async with http.get(path) as response:
            unauth = await response.json()
        assert (response.status, unauth["reason"], unauth["code"]) == (401, "Unauthorized", 401)


async def test_refused_patch_is_final(fake: FakeKubernetes, url: str) -> None:
    client = ConfigMapClient(KubernetesSettings(host=url, token="good-token"))
    try:
        with pytest.raises(ActionError) as raised:
            await client.merge_patch(NS, CM, {"data": {KEY: 50}})
    finally:
        await client.close()
    assert (raised.value.status, raised.value.retryable) == (422, False)
    assert "(Invalid)" in str(raised.value)
    assert fake.data(NS, CM)[KEY] == "200"
