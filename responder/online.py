"""``check-config --online``: ask each target the runbook will touch whether it is there.

One line per check, ``ok`` or ``problem`` (or ``skipped`` when the setting that
would make it possible is not set): the DAGs the playbooks pause and trigger
exist in Airflow, the throttle's ConfigMap exists and a dry-run merge patch of
its key is accepted (so the RBAC allows the real one), the read-cache flag
exists in the runtime-config API, Slack's ``auth.test`` accepts the bot token,
Alertmanager answers ``/-/ready``, and (verification on) the GX validations
store holds the quality suites recovery waits for and dbt's run_results.json
(``verification.dbt_tests``) can be read. Nothing is changed anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from feedguard.core.airflow import AirflowClient
from feedguard.core.airflow_api import AirflowError
from feedguard.core.dbt_results import DbtResultsError, RunResultsFile
from feedguard.core.gx_results import ValidationStore, ValidationStoreError
from feedguard.core.schema import read_secret

from .actions.kube import ConfigMapClient
from .actions.runtime_config import RuntimeConfigClient
from .config import ResponderConfig
from .isotimes import iso_utc
from .notes.slack import delivery_error
from .plugins import ActionError


@dataclass(frozen=True)
class Check:
    target: str
    status: str  # ok, problem, skipped
    detail: str

    def line(self) -> str:
        return f"{self.status}: {self.target}: {self.detail}"


def _dags(config: ResponderConfig) -> list[str]:
    dags = [dag for p in config.providers.enabled for dag in p.dags]
    dags += [config.actions.fallback_dag, config.actions.backfill_dag]
    return list(dict.fromkeys(dags))


async def check_airflow(config: ResponderConfig, session: aiohttp.ClientSession) -> Check:
    target = f"airflow {config.actions.airflow.base_url}"
    wanted = _dags(config)
    try:
        password = config.actions.airflow.read_password()
        client = AirflowClient(session, config.actions.airflow, password=password)
        found = await client.list_dags(wanted)
    except AirflowError as exc:
        return Check(target, "problem", str(exc))
    missing = [d for d in wanted if d not in found]
    if missing:
        return Check(target, "problem", f"DAGs not found: {', '.join(missing)}")
    return Check(target, "ok", f"{len(wanted)} DAGs found: {', '.join(wanted)}")


async def check_configmap(config: ResponderConfig) -> Check:
    kube = config.actions.kubernetes
    target = f"configmap {kube.namespace}/{kube.configmap}"
    client = ConfigMapClient(kube)
    try:
        state = await client.read(kube.namespace, kube.configmap)
        current = state.data.get(kube.key)
        body = {
            "metadata": {"resourceVersion": state.resource_version},
            "data": {kube.key: current},
        }
        await client.merge_patch(kube.namespace, kube.configmap, body, dry_run=True)
    except ActionError as exc:
        return Check(target, "problem", str(exc))
    finally:
        await client.close()
    return Check(target, "ok", f"exists, {kube.key}={current!r}, a dry-run patch was accepted")


async def check_runtime_flag(config: ResponderConfig, session: aiohttp.ClientSession) -> Check:
    settings = config.actions.runtime_config
    target = f"runtime-config feature {settings.feature}"
    if not settings.base_url:
        return Check(target, "skipped", "actions.runtime_config.base_url is not set")
    token = read_secret(settings.token, settings.token_file, "runtime-config token")
    client = RuntimeConfigClient(session, settings.base_url, token, settings.timeout_seconds)
    try:
        status, body = await client.get(settings.feature)
    except ActionError as exc:
        return Check(target, "problem", str(exc))
    if status == 200:
        return Check(target, "ok", f"exists: {body}")
    if status in (405, 501):
        return Check(target, "skipped", f"the API does not serve GET (HTTP {status})")
    return Check(target, "problem", f"HTTP {status}: {body}")


async def check_slack(config: ResponderConfig, session: aiohttp.ClientSession) -> Check:
    notes = config.notes
    target = f"slack {notes.base_url}"
    token = notes.token()
    if not token:
        return Check(target, "skipped", "no Slack bot token (notes.slack_token[_file])")
    client = AsyncWebClient(token=token, base_url=notes.base_url, session=session, timeout=10)
    try:
        answer = await client.auth_test()
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        return Check(target, "problem", str(delivery_error("auth.test", exc)))
    return Check(target, "ok", f"auth.test ok as {answer.get('user')} in {answer.get('team')}")


async def check_alertmanager(url: str | None, session: aiohttp.ClientSession) -> Check:
    target = f"alertmanager {url or ''}".rstrip()
    if not url:
        return Check(target, "skipped", "no --alertmanager-url given")
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with session.get(url.rstrip("/") + "/-/ready", timeout=timeout) as response:
            if response.status == 200:
                return Check(target, "ok", "/-/ready answered 200")
            return Check(target, "problem", f"/-/ready answered HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check(target, "problem", f"not reachable: {type(exc).__name__}: {exc}")


async def check_quality_store(config: ResponderConfig) -> Check:
    """Verified recovery's suites have results in the store (a wrong name or path
    would only show as an expired bound after the first backfill)."""
    settings = config.verification
    target = f"quality store {settings.validations_dir}"
    if not settings.enabled:
        return Check(target, "skipped", "verification.enabled is false")
    suites = [settings.suite] + [
        p.quality_suite for p in config.providers.enabled if p.quality_suite
    ]
    wanted = list(dict.fromkeys(suites))
    store = ValidationStore(Path(settings.validations_dir))
    try:
        results = await asyncio.to_thread(store.scan, wanted)
    except (ValidationStoreError, OSError) as exc:
        return Check(target, "problem", str(exc))
    if store.missing:
        return Check(target, "problem", f"no result of suite(s) {', '.join(store.missing)}")
    found = ", ".join(
        f"{r.suite} ({'passed' if r.success else 'failed'} at {iso_utc(r.run_time)})"
        for r in results
    )
    return Check(target, "ok", f"newest results: {found}")


async def check_dbt_results(config: ResponderConfig) -> Check:
    """Verified recovery's dbt tests: run_results.json is where configured and readable
    (a wrong path would only show as an expired bound after the first backfill)."""
    settings = config.verification
    tests = settings.dbt_tests
    target = f"dbt run results {tests.run_results_path}"
    if not settings.enabled:
        return Check(target, "skipped", "verification.enabled is false")
    if not tests.enabled:
        return Check(target, "skipped", "verification.dbt_tests.enabled is false")
    try:
        run = await asyncio.to_thread(RunResultsFile(Path(tests.run_results_path)).read)
    except DbtResultsError as exc:
        return Check(target, "problem", str(exc))
    if run is None:
        return Check(target, "problem", "no such file (dbt writes it after each invocation)")
    # The config's selector and the catalog's per-provider ones.
    wanted = [tests.select] + [p.dbt_select for p in config.providers.enabled if p.dbt_select]
    wanted = list(dict.fromkeys(wanted))
    covered = [select for select in wanted if run.covers(select)]
    newest = f"newest: dbt {run.command} at {iso_utc(run.generated_at)}"
    if not covered:
        alternatives = " / ".join(wanted)
        return Check(
            target, "ok", f"{newest}, not a test or build covering --select {alternatives}"
        )
    counts = f"{run.passed} passed, {len(run.failed)} failed, {run.skipped} skipped"
    others = [select for select in wanted if select not in covered]
    rest = f" (not --select {' / '.join(others)})" if others else ""
    return Check(target, "ok", f"{newest} covering --select {' / '.join(covered)}{rest}: {counts}")


async def run_online_checks(config: ResponderConfig, alertmanager_url: str | None) -> list[Check]:
    async with aiohttp.ClientSession() as session:
        checks: list[Callable[[], Awaitable[Check]]] = [
            lambda: check_airflow(config, session),
            lambda: check_configmap(config),
            lambda: check_runtime_flag(config, session),
            lambda: check_slack(config, session),
            lambda: check_alertmanager(alertmanager_url, session),
            lambda: check_quality_store(config),
            lambda: check_dbt_results(config),
        ]
        results = []
        for check in checks:
            try:
                results.append(await check())
            except Exception as exc:  # one broken target must not hide the others
                results.append(Check("check", "problem", f"{type(exc).__name__}: {exc}"))
        return results
