"""Build and run a responder for tests (used by the core, actions and notes tests).

Typical use::

    clock = FakeClock()
    config = responder_config(tmp_path, catalog=make_catalog({...}), playbooks=[...])
    counter = CountingAction("throttle_api", resource="k8s:cm:x")
    async with start_responder(config, clock=clock, actions={counter.name: counter}) as r:
        await r.post(notification([alert("ISO-NE")]))   # the webhook, as Alertmanager
        await r.settle()                                 # runs kicked work to the end
        clock.advance(3600); await r.tick()              # due work: notes, probes, resumes
        incident = await r.incident("ISO-NE")            # GET /api/v1/incidents/{id}

``start_responder`` runs the real ``create_app`` on a loopback port with no
background ticker (``background=False``): work happens when the webhook kicks
it or the test calls ``tick()``, so tests never sleep.  Pass ``actions=`` and
``notifier=`` to replace what ``open_actions`` / ``open_notifier`` would open,
or leave them None to use the real plugins with ``config.actions`` /
``config.notes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
from aiohttp.test_utils import TestServer

from feedguard.core.catalog import Catalog
from feedguard.core.schema import load_model
from feedguard.responder import appkeys
from feedguard.responder.app import create_app, server_options
from feedguard.responder.config import ResponderConfig
from feedguard.responder.engine import Engine
from feedguard.responder.plugins import (
    JSON,
    Action,
    ActionError,
    Notifier,
    Outcome,
    StepContext,
    Target,
)

from .openapi_check import CheckedResponse
from .services import free_port

T0 = 1_790_000_000.0  # a fixed "now" for tests (2026-09-21)
BEARER = "test-webhook-token"
FLAGS_TOKEN = "test-flags-token"

# Playbooks like the shipped ones, for actions the tests register.
DEFAULT_PLAYBOOKS: list[dict[str, Any]] = [
    {
        "name": "provider-down",
        "matchers": ['alertname="ExternalProviderDown"'],
        "firing": [{"action": "throttle_api"}, {"action": "pause_dags"}],
        "resolved": [{"action": "trigger_backfill"}, {"revert": "all"}],
    }
]


class FakeClock:
    """An injectable clock: ``create_app(config, clock=FakeClock())``."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def responder_config(
    tmp_path: Path,
    *,
    catalog: Catalog,
    playbooks: Sequence[Mapping[str, Any]] | None = None,
    redis_url: str | None = None,
    store: str = "sqlite",
    **overrides: Any,
) -> ResponderConfig:
    """A validated config for tests: fast executor backoff, immediate probes, bearer auth.

    ``overrides`` are raw YAML-shaped sections (e.g. ``recovery={"probes_required": 2}``,
    ``actions={...}``, ``notes={...}``) merged over the defaults below.
    """
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "dry_run": False,
        "store": {"backend": store, "sqlite_path": str(tmp_path / "responder.db")},
        "webhook": {"bearer_token": BEARER},
        "features": {"token": FLAGS_TOKEN},
        "executor": {"backoff_initial_seconds": 0.01, "timeout_seconds": 5},
        "recovery": {"probes_required": 2, "probe_interval_seconds": 30},
        "playbooks": list(playbooks if playbooks is not None else DEFAULT_PLAYBOOKS),
    }
    if redis_url is not None:
        data["redis"] = {"url": redis_url}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    config = load_model(ResponderConfig, data, "<test>")
    return config.model_copy(update={"catalog": catalog})


# --- Alertmanager payloads ------------------------------------------------------------

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def alert(
    provider: str | None,
    alertname: str = "ExternalProviderDown",
    *,
    status: str = "firing",
    starts_at: float = T0,
    ends_at: float | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook renders it (fingerprint from the labels)."""
    all_labels = {"alertname": alertname, "severity": "page", "team": "data-platform", **labels}
    if provider is not None:
        all_labels["provider"] = provider
    fingerprint = hashlib.sha256(repr(sorted(all_labels.items())).encode()).hexdigest()[:16]
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{alertname} for {provider}", "runbook_url": "http://x/rb"},
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(ends_at) if ends_at is not None else ZERO_TIME,
        "generatorURL": "http://prometheus.local/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def resolved(firing: Mapping[str, Any], ends_at: float = T0 + 600) -> dict[str, Any]:
    return {**firing, "status": "resolved", "endsAt": rfc3339(ends_at)}


def notification(alerts: Sequence[Mapping[str, Any]], group_key: str = "{}:{}") -> dict[str, Any]:
    """A version 4 webhook body as Alertmanager posts it."""
    firing = any(a["status"] == "firing" for a in alerts)
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    return {
        "receiver": "feedguard",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"provider": common["provider"]} if "provider" in common else {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


# --- test actions -------------------------------------------------------------------------


class CountingAction:
    """A test Action counting its calls; ``fail_times`` makes the first applies fail.

    ``value`` is the state of the pretend external system, so reverts can be checked.
    """

    circuit: ClassVar[str] = "test"

    def __init__(
        self,
        name: str,
        *,
        resource: str | None = None,
        reversible: bool = True,
        fail_times: int = 0,
        retryable: bool = True,
        value: JSON = "100",
        wanted: JSON = "50",
        targets_per_step: int = 1,
    ) -> None:
        self.name = name  # type: ignore[misc]  # an instance attribute stands in for the ClassVar
        self.reversible = reversible  # type: ignore[misc]
        self.resource = resource
        self.fail_times = fail_times
        self.retryable = retryable
        self.value = value
        self.wanted = wanted
        self.targets_per_step = targets_per_step
        self.applied: list[tuple[str, str]] = []  # (incident id, target)
        self.reverted: list[tuple[str, str, JSON]] = []  # (incident id, target, previous)
        self.attempts = 0

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        return [
            Target(
                description=f"{self.name} #{n}",
                resource=f"{self.resource}#{n}" if self.resource and n else self.resource,
            )
            for n in range(self.targets_per_step)
        ]

    async def apply(self, ctx: StepContext, target: Target) -> Outcome:
        self.attempts += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ActionError(f"{self.name} refused", retryable=self.retryable, status=503)
        previous = self.value
        self.value = self.wanted
        self.applied.append((ctx.incident.id, target.description))
        return Outcome(
            previous=previous, detail={"by": ctx.incident.id}, changed=previous != self.wanted
        )

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome:
        current = self.value
        self.value = previous
        self.reverted.append((ctx.incident.id, target.description, previous))
        return Outcome(previous=current)


def counting_actions() -> dict[str, CountingAction]:
    """CountingActions for DEFAULT_PLAYBOOKS' throttle_api, pause_dags and trigger_backfill."""
    return {
        "throttle_api": CountingAction("throttle_api", resource="k8s:cm:rate"),
        "pause_dags": CountingAction("pause_dags"),
        "trigger_backfill": CountingAction("trigger_backfill", reversible=False),
    }


# --- running -----------------------------------------------------------------------------


@dataclasses.dataclass
class Responder:
    server: TestServer
    session: aiohttp.ClientSession
    clock: FakeClock | None

    @property
    def app(self) -> Any:
        return self.server.app

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhook/alertmanager"

    @property
    def engine(self) -> Engine:
        return self.server.app[appkeys.ENGINE]  # type: ignore[index]

    async def post(
        self, body: Any, *, token: str | None = BEARER, headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        all_headers = {"Authorization": f"Bearer {token}"} if token else {}
        all_headers.update(headers or {})
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes | str) else {"json": body}
        async with self.session.post(self.webhook_url, headers=all_headers, **kwargs) as response:
            await response.read()
            return response

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        async with self.session.get(self.url + path, **kwargs) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def incidents(self) -> list[dict[str, Any]]:
        body = await self.get_json("/api/v1/incidents")
        return list(body["incidents"])

    async def incident(self, provider: str | None = None) -> dict[str, Any]:
        """The newest incident (of a provider), in full."""
        rows = [i for i in await self.incidents() if provider is None or i["provider"] == provider]
        assert rows, f"no incident for {provider!r}"
        return dict(await self.get_json(f"/api/v1/incidents/{rows[0]['id']}"))

    async def tick(self) -> None:
        """Perform due work now (after ``clock.advance``), and wait for what it started."""
        await self.engine.tick()
        await self.engine.settle()

    async def settle(self) -> None:
        await self.engine.settle()

    async def metrics(self) -> str:
        async with self.session.get(self.url + "/metrics") as response:
            return await response.text()


class _Server(TestServer):
    """A TestServer with the request-handler options feedguard-responder serves with
    (header timeout, no handler cancellation), over TestServer's own choices."""

    def __init__(self, app: Any, options: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._options = options

    async def _make_runner(self, **kwargs: Any) -> Any:
        return await super()._make_runner(**{**kwargs, **self._options})


@contextlib.asynccontextmanager
async def start_responder(
    config: ResponderConfig,
    *,
    clock: FakeClock | None = None,
    actions: Mapping[str, Action] | None = None,
    notifier: Notifier | None = None,
    background: bool = False,
    port: int | None = None,
) -> AsyncIterator[Responder]:
    app = create_app(
        config, clock=clock or time.time, actions=actions, notifier=notifier, background=background
    )
    server = _Server(app, server_options(config), host="127.0.0.1", port=port or free_port())
    await server.start_server()
    try:
        # A bounded wait: a hung responder fails the test with a traceback.
        # Every answer a test reads is checked against responder/openapi.yml.
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30), response_class=CheckedResponse
        ) as session:
            yield Responder(server, session, clock)
    finally:
        await server.close()


async def wait_for(predicate: Any, within: float = 20.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy (no fixed sleeps)."""
    import asyncio

    deadline = time.monotonic() + within
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)
