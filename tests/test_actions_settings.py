"""The actions: section and open_actions()."""

from __future__ import annotations

import pytest

from feedguard.core.catalog import Catalog
from feedguard.core.schema import ConfigError, load_model
from feedguard.responder.actions import ACTION_NAMES, open_actions
from feedguard.responder.actions.settings import ActionsSettings

from .support.action_context import context, provider
from .support.fake_runtime_config import FakeRuntimeConfig


def test_defaults_are_the_runbooks() -> None:
    settings = load_model(ActionsSettings, {}, "responder.yml")
    assert settings.kubernetes.namespace == "aurum-dev"
    assert settings.kubernetes.configmap == "aurum-api-config"
    assert settings.kubernetes.key == "AURUM_API_RATE_LIMIT_RPS"
    assert settings.kubernetes.value == "50"
    assert settings.runtime_config.feature == "external_read_cache"
    assert settings.runtime_config.ttl_seconds == 900
    assert settings.fallback_dag == "external_data_fallback"
    assert settings.backfill_dag == "external_data_backfill"


def test_every_bad_setting_is_named() -> None:
    with pytest.raises(ConfigError) as raised:
        load_model(
            ActionsSettings,
            {
                "kubernetes": {"namespace": "Aurum Dev", "key": "a b", "host": "ftp://x"},
                "runtime_config": {"ttl_seconds": 0, "base_url": "nope"},
                "fallback_dag": "a:b",
            },
            "responder.yml",
        )
    text = str(raised.value)
    for path in (
        "kubernetes.namespace",
        "kubernetes.key",
        "kubernetes.host",
        "runtime_config.ttl_seconds",
        "runtime_config.base_url",
        "fallback_dag",
    ):
        assert f"responder.yml: {path}: " in text


async def test_open_actions_yields_every_action() -> None:
    fake = FakeRuntimeConfig.with_features(["external_read_cache"], token="t")
    async with fake.serve() as url:
        settings = load_model(
            ActionsSettings,
            {"runtime_config": {"base_url": url, "token": "t"}},
            "responder.yml",
        )
        async with open_actions(settings, Catalog(providers=(provider(),))) as actions:
            assert tuple(actions) == ACTION_NAMES
            kinds = {n: (a.reversible, a.circuit) for n, a in actions.items()}
            assert kinds == {
                "throttle_api": (True, "kubernetes"),
                "pause_dags": (True, "airflow"),
                "pause_streaming": (True, "seatunnel"),
                "read_cache": (True, "runtime-config"),
                "reduce_batch_size": (True, "runtime-config"),
                "disable_feeds": (True, "airflow"),
                "trigger_fallback": (False, "airflow"),
                "trigger_backfill": (False, "airflow"),
            }
            cache = actions["read_cache"]
            ctx = context()
            (target,) = cache.targets(ctx)
            await cache.apply(ctx, target)
        assert fake.features["external_read_cache"]["enabled"] is True


async def test_missing_token_file_fails_at_start(tmp_path: object) -> None:
    settings = load_model(
        ActionsSettings, {"runtime_config": {"token_file": "/nonexistent/token"}}, "x.yml"
    )
    with pytest.raises(ConfigError, match="runtime-config token"):
        async with open_actions(settings, Catalog(providers=())):
            pass
