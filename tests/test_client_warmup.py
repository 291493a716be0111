"""Clients built and checked at start (issue 11): the check reaches each stand-in, the
first action reuses what it warmed, and a failing check never stops the start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feedguard.core.catalog import Catalog

from .conftest import make_catalog
from .exporter_support import value
from .support.fake_airflow2 import FakeAirflow2
from .support.fake_http import serve_app
from .support.fake_kubernetes import FakeKubernetes
from .support.fake_runtime_config import FakeRuntimeConfig
from .support.fake_slack import FakeSlack, running_fake_slack
from .support.responder import Responder, alert, notification, responder_config, start_responder
from .support.services import free_port

NS, CM, KEY = "aurum-dev", "aurum-api-config", "AURUM_API_RATE_LIMIT_RPS"
FEATURE = "external_read_cache"
K8S_TOKEN = "k8s-token"
READY = "feedguard_responder_client_ready"
PLAYBOOKS = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [{"action": "throttle_api"}, {"action": "read_cache"}, {"action": "pause_dags"}],
    }
]
CATALOG: Catalog = make_catalog({"ISO-NE": {"datasets": ["lmp"], "dags": ["external_ingest"]}})


class StandIns:
    """The four stand-ins and their URLs."""

    def __init__(self) -> None:
        self.kube = FakeKubernetes()
        self.kube.put(NS, CM, {KEY: "200"})
        self.runtime = FakeRuntimeConfig.with_features([FEATURE])
        self.airflow = FakeAirflow2()
        self.airflow.add_dag("external_ingest")
        self.urls: dict[str, str] = {}
        self.slack: FakeSlack | None = None

    def config(self, tmp_path: Path, **overrides: Any) -> Any:
        assert self.slack is not None
        return responder_config(
            tmp_path,
            catalog=CATALOG,
            playbooks=PLAYBOOKS,
            actions={
                "kubernetes": {"host": self.urls["kube"], "token": K8S_TOKEN},
                "runtime_config": {"base_url": self.urls["runtime"], "token": self.runtime.token},
                "airflow": {"base_url": self.urls["airflow"], "password": "secret"},
            },
            notes={"slack_token": self.slack.token, "base_url": self.slack.api_url},
            clients={"retry_seconds": 0.05, **overrides},
        )


@pytest.fixture
async def stand_ins() -> AsyncIterator[StandIns]:
    s = StandIns()
    async with (
        s.kube.serve() as kube,
        s.runtime.serve() as runtime,
        serve_app(s.airflow.app()) as airflow,
        running_fake_slack() as slack,
    ):
        s.urls = {"kube": kube, "runtime": runtime, "airflow": airflow}
        s.slack = slack
        yield s


async def clients_when(r: Responder, ready: bool, *names: str) -> dict[str, Any]:
    """/readyz's clients once every named one has passed (or failed) its check (bounded wait)."""
    for _ in range(400):
        answer = await r.get_json("/readyz")
        clients: dict[str, Any] = answer["clients"]
        # Not ready counts once a check has failed (an error), not before the first one.
        if all(
            clients.get(n, {}).get("ready") is ready and (ready or clients[n]["error"])
            for n in names
        ):
            return clients
        await asyncio.sleep(0.025)
    raise AssertionError(f"clients never became ready={ready}: {answer}")


async def test_clients_are_checked_at_start_and_the_first_action_reuses_them(
    tmp_path: Path, stand_ins: StandIns
) -> None:
    s = stand_ins
    s.kube.grant(K8S_TOKEN)
    assert s.slack is not None
    async with start_responder(s.config(tmp_path)) as r:
        clients = await clients_when(r, True, "kubernetes", "runtime_config", "airflow", "slack")
        assert sorted(clients) == ["airflow", "kubernetes", "runtime_config", "slack"]
        metrics = await r.metrics()
        for name in clients:
            assert value(metrics, READY, client=name) == 1
        # Each check went through the real client and changed nothing.
        configmap = f"/api/v1/namespaces/{NS}/configmaps/{CM}"
        assert [(m, p.split("?")[0], b) for m, p, _, b in s.kube.requests] == [
            ("GET", configmap, None),
            ("PATCH", configmap, {}),  # an empty merge patch, as a server-side dry run
        ]
        assert "dryRun=All" in s.kube.requests[1][1]
        assert s.kube.patches() == []
        assert [(q.method, q.feature) for q in s.runtime.requests] == [("GET", FEATURE)]
        # version: auto asks Airflow 3's health path, then Airflow 2's.
        detection = [("GET", "/api/v2/monitor/health"), ("GET", "/api/v1/health")]
        assert s.airflow.requests == [*detection, ("GET", "/api/v1/dags?limit=1")]
        assert [q.path for q in s.slack.requests] == ["/api/auth.test"]
        kube_port = s.kube.client_ports[0]
        runtime_port = s.runtime.client_ports[0]

        await r.post(notification([alert("ISO-NE")]))
        await r.settle()
        incident = await r.incident("ISO-NE")
        results = {a["action"]: a["result"] for a in incident["actions"]}
        assert results == {
            "throttle_api": "success",
            "read_cache": "success",
            "pause_dags": "success",
        }

    assert s.kube.data(NS, CM)[KEY] == "50"
    assert len(s.kube.patches()) == 1
    # The first action went over the connection the check opened: no new TCP connection.
    assert set(s.kube.client_ports) == {kube_port}
    assert set(s.runtime.client_ports) == {runtime_port}
    # Airflow's version was asked once, at start; the action did not ask again.
    assert s.airflow.requests.count(("GET", "/api/v1/health")) == 1
    assert s.airflow.requests.count(("GET", "/api/v2/monitor/health")) == 1
    assert ("PATCH", "/api/v1/dags/external_ingest?update_mask=is_paused") in s.airflow.requests


async def test_a_failing_check_does_not_stop_the_start_and_is_retried(
    tmp_path: Path, stand_ins: StandIns, capsys: pytest.CaptureFixture[str]
) -> None:
    s = stand_ins
    # No grant yet: the API server answers 401 Unauthorized.
    async with start_responder(s.config(tmp_path)) as r:
        clients = await clients_when(r, False, "kubernetes")
        await clients_when(r, True, "runtime_config", "airflow", "slack")
        error = clients["kubernetes"]["error"]
        assert "HTTP 401" in error
        assert K8S_TOKEN not in error
        readyz = await r.session.get(r.url + "/readyz")
        assert readyz.status == 200  # notifications are still taken
        assert value(await r.metrics(), READY, client="kubernetes") == 0

        s.kube.grant(K8S_TOKEN)  # the cluster comes back: the retry passes
        clients = await clients_when(r, True, "kubernetes")
        assert clients["kubernetes"]["attempts"] >= 2
        assert value(await r.metrics(), READY, client="kubernetes") == 1
    out = capsys.readouterr().out
    assert out.count("client check failed; retrying") == 1  # logged once, not per retry
    assert K8S_TOKEN not in out


async def test_a_role_without_patch_fails_the_check_at_start(
    tmp_path: Path, stand_ins: StandIns
) -> None:
    s = stand_ins
    s.kube.grant(K8S_TOKEN, verbs=["get"])  # the Role lacks "patch": the throttle would fail
    async with start_responder(s.config(tmp_path)) as r:
        clients = await clients_when(r, False, "kubernetes")
    assert "HTTP 403" in clients["kubernetes"]["error"]
    assert 'cannot patch resource "configmaps"' in clients["kubernetes"]["error"]
    assert s.kube.data(NS, CM) == {KEY: "200"}


async def test_an_unreachable_service_is_reported_not_raised(
    tmp_path: Path, stand_ins: StandIns
) -> None:
    s = stand_ins
    s.urls["runtime"] = f"http://127.0.0.1:{free_port()}"
    async with start_responder(s.config(tmp_path, retry_seconds=30)) as r:
        clients = await clients_when(r, False, "runtime_config")
        assert "ClientConnectorError" in clients["runtime_config"]["error"]
        assert (await r.session.get(r.url + "/readyz")).status == 200


async def test_only_clients_the_playbooks_use_are_checked(tmp_path: Path) -> None:
    runtime = FakeRuntimeConfig.with_features([FEATURE])
    async with runtime.serve() as url:
        config = responder_config(
            tmp_path,
            catalog=CATALOG,
            playbooks=[
                {"name": "p", "matchers": ['alertname="X"'], "firing": [{"action": "read_cache"}]}
            ],
            actions={"runtime_config": {"base_url": url, "token": runtime.token}},
        )
        async with start_responder(config) as r:
            # No Kubernetes, Airflow or Slack configured: none of them is checked.
            clients = await clients_when(r, True, "runtime_config")
            assert sorted(clients) == ["runtime_config"]
