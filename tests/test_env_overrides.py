"""FEEDGUARD_* overrides: nested keys, mapping-valued settings, misspelt variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedguard.core.record import load_record_config
from feedguard.core.schema import ConfigError
from feedguard.exporter.config import load_config as load_exporter
from feedguard.responder.config import load_config as load_responder

REPO = Path(__file__).resolve().parent.parent
CATALOG = str(REPO / "config" / "external_providers.yml")


def responder_file(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "responder.yml"
    path.write_text(f"catalog_file: {CATALOG}\n{text}", encoding="utf-8")
    return path


def test_per_action_options_by_json_merge_into_the_file(tmp_path: Path) -> None:
    path = responder_file(
        tmp_path, "action_options:\n  pause_dags: {params: {dags: [a]}}\n  read_cache: {}\n"
    )
    config = load_responder(path, {"FEEDGUARD_ACTION_OPTIONS": '{"pause_dags": {"dry_run": true}}'})
    options = config.action_options
    assert options["pause_dags"].dry_run is True
    assert options["pause_dags"].params == {"dags": ["a"]}  # kept from the file
    assert set(options) == {"pause_dags", "read_cache"}


def test_nested_delimiter_reaches_into_mappings(tmp_path: Path) -> None:
    config = load_responder(
        responder_file(tmp_path),
        {
            "FEEDGUARD_ACTION_OPTIONS__TRIGGER_BACKFILL__DRY_RUN": "true",
            "FEEDGUARD_ACTION_OPTIONS__TRIGGER_BACKFILL__PARAMS__LOOKBACK_HOURS": "6",
            "FEEDGUARD_ACTIONS__KUBERNETES__NAMESPACE": "aurum-prod",
            "FEEDGUARD_DRY_RUN": "false",
        },
    )
    backfill = config.action_options["trigger_backfill"]
    assert backfill.dry_run is True
    assert backfill.params == {"lookback_hours": 6}
    assert config.actions.kubernetes.namespace == "aurum-prod"
    assert config.dry_run is False


def test_a_misspelt_variable_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_responder(
            responder_file(tmp_path),
            {
                "FEEDGUARD_DRYRUN": "false",
                "FEEDGUARD_ACTION_OPTIONS__PAUSE_DAGS__DRYRUN": "true",
                # Variables the project reads for other purposes are not settings.
                "FEEDGUARD_EXPORTER_CONFIG": "/etc/feedguard/exporter.yml",
                "FEEDGUARD_AIRFLOW_VENV": "/opt/airflow",
            },
        )
    assert caught.value.errors == [
        "env FEEDGUARD_ACTION_OPTIONS__PAUSE_DAGS__DRYRUN: <name>: not a setting "
        "(did you mean FEEDGUARD_ACTION_OPTIONS?)",
        "env FEEDGUARD_DRYRUN: <name>: not a setting (did you mean FEEDGUARD_DRY_RUN?)",
    ]


def test_each_service_judges_its_own_variables(tmp_path: Path) -> None:
    # One environment for both services: each leaves the other's variables alone...
    shared = {
        "FEEDGUARD_CATALOG_FILE": CATALOG,
        "FEEDGUARD_REDIS_URL": "redis://h:1/2",
        "FEEDGUARD_STORE_SQLITE_PATH": str(tmp_path / "responder.db"),
        "FEEDGUARD_ACTION_OPTIONS__PAUSE_DAGS__DRY_RUN": "true",
        "FEEDGUARD_PROBES_ENABLED": "false",
        "FEEDGUARD_AIRFLOW_PASSWORD": "x",
    }
    assert load_exporter(None, shared).probes.enabled is False
    responder = load_responder(None, shared)
    assert responder.store.sqlite_path == str(tmp_path / "responder.db")
    # ...and record-success reads part of the exporter's settings: the rest is the exporter's.
    assert load_record_config(None, shared).redis.url == "redis://h:1/2"
    # A name that is no service's setting is an error for each of them.
    typo = {**shared, "FEEDGUARD_PROBES_ENABLE": "false"}
    for load in (load_exporter, load_responder, load_record_config):
        with pytest.raises(ConfigError) as caught:
            load(None, typo)
        assert caught.value.errors[0].startswith("env FEEDGUARD_PROBES_ENABLE: <name>: not a "), (
            caught.value.errors
        )


def test_bad_json_and_bad_nested_values_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_responder(
            responder_file(tmp_path),
            {
                "FEEDGUARD_ACTION_OPTIONS": "{pause_dags: yes}",
                "FEEDGUARD_PLAYBOOKS": '[{"name": "x", "firing": [{"action": 3}]}]',
                "FEEDGUARD_NOTES__MAX_RETRIES": "-1",
            },
        )
    assert caught.value.errors == [
        "env FEEDGUARD_ACTION_OPTIONS: action_options: expected JSON here: "
        "Expecting property name enclosed in double quotes at column 2",
        "env FEEDGUARD_PLAYBOOKS: playbooks[0].firing[0].action: expected a string, got int 3",
        "env FEEDGUARD_NOTES__MAX_RETRIES: notes.max_retries: must not be negative, got -1",
    ]


def test_empty_value_unsets_an_optional_setting(tmp_path: Path) -> None:
    path = responder_file(tmp_path, "features: {token_file: /nonexistent}\n")
    config = load_responder(path, {"FEEDGUARD_FEATURES_TOKEN_FILE": ""})
    assert config.features.token_file is None


def test_secrets_are_redacted_in_reprs(tmp_path: Path) -> None:
    config = load_responder(
        responder_file(tmp_path),
        {
            "FEEDGUARD_WEBHOOK_BEARER_TOKEN": "hunter2-bearer",
            "FEEDGUARD_REDIS_PASSWORD": "hunter2-redis",
            "FEEDGUARD_ACTIONS_AIRFLOW_PASSWORD": "hunter2-airflow",
        },
    )
    text = repr(config)
    assert "hunter2" not in text
    assert "bearer_token='[redacted]'" in text
    assert config.webhook_bearer_token() == "hunter2-bearer"


def test_deploy_manifests_and_compose_set_only_real_settings() -> None:
    from feedguard.core.env import NOT_SETTINGS, env_names
    from feedguard.exporter.config import ExporterConfig
    from feedguard.responder.config import ResponderConfig

    known = {"exporter": env_names(ExporterConfig), "responder": env_names(ResponderConfig)}
    checked = 0
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        service = next((s for s in known if s in path.name), None)
        for name in re.findall(r"- name: (FEEDGUARD_\w+)", path.read_text(encoding="utf-8")):
            assert service, f"{path}: {name} in a file of neither service"
            assert name in known[service] or name in NOT_SETTINGS, f"{path}: {name}"
            checked += 1
    compose = (REPO / "compose.yml").read_text(encoding="utf-8")
    for name in re.findall(r"(FEEDGUARD_\w+):", compose):
        assert name in known["exporter"] or name in known["responder"], name
        checked += 1
    assert checked >= 10


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = responder_file(tmp_path, "webhook: {bearer_token: 31337}\nredis: {password: [7, 7]}\n")
    with pytest.raises(ConfigError) as caught:
        load_responder(path, {})
    assert caught.value.errors == [
        f"{path}: redis.password: expected a string, got (a list, not shown: it is a secret)",
        f"{path}: webhook.bearer_token: expected a string, got (a int, not shown: it is a secret)",
    ]
