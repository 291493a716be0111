"""The responder's config loading reports every mistake in one run, as the exporter's does."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedguard.exporter.config import load_config as load_exporter
from feedguard.responder.config import ConfigError, load_config


def test_responder_lists_settings_catalog_and_env_errors_together(tmp_path: Path) -> None:
    config = tmp_path / "responder.yml"
    config.write_text("catalog_file: missing.yml\nexecutor: {attempts: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={"FEEDGUARD_SCHEDULER_TICK_SECONDS": "soon"})
    errors = info.value.errors
    assert any(e.startswith(f"{config}: executor.attempts: must be at least 1") for e in errors)
    assert any(
        e.startswith("env FEEDGUARD_SCHEDULER_TICK_SECONDS: scheduler.tick_seconds:")
        for e in errors
    )
    assert any(e.startswith(f"{tmp_path / 'missing.yml'}: <file>: cannot read") for e in errors)
    assert len(errors) == 3, errors


def test_responder_lists_every_unreadable_secret_file(tmp_path: Path) -> None:
    catalog = Path(__file__).resolve().parents[1] / "config" / "external_providers.yml"
    config = tmp_path / "responder.yml"
    config.write_text(
        f"catalog_file: {catalog}\n"
        f"webhook: {{bearer_token_file: {tmp_path / 'bearer'}}}\n"
        f"features: {{token_file: {tmp_path / 'features'}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={})
    missing = "No such file or directory"
    assert info.value.errors == [
        f"{tmp_path / 'bearer'}: <file>: cannot read webhook bearer token: {missing}",
        f"{tmp_path / 'features'}: <file>: cannot read feature-flag token: {missing}",
    ]


def test_responder_check_config_reads_every_secret_the_start_reads(tmp_path: Path) -> None:
    """airflow.password_file and the actions' token files passed check-config and
    then ended the start in a traceback."""
    catalog = Path(__file__).resolve().parents[1] / "config" / "external_providers.yml"
    config = tmp_path / "responder.yml"
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    config.write_text(
        f"catalog_file: {catalog}\n"
        "actions:\n"
        f"  airflow: {{password_file: {tmp_path / 'airflow'}}}\n"
        f"  runtime_config: {{token_file: {tmp_path / 'runtime'}}}\n"
        f"  kubernetes: {{token_file: {unreadable}}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={})
    errors = "\n".join(info.value.errors)
    assert f"{tmp_path / 'airflow'}: <file>: cannot read airflow password" in errors
    assert f"{tmp_path / 'runtime'}: <file>: cannot read runtime-config token" in errors
    assert f"{unreadable}: <file>: cannot read Kubernetes token" in errors


def test_exporter_paths_are_relative_to_the_config_file_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule: relative paths in a config file are relative to its folder, wherever
    the process runs; dbt/GX paths that are missing or of the wrong kind are errors."""
    conf = tmp_path / "etc"
    (conf / "target").mkdir(parents=True)
    (conf / "target" / "sources.json").write_text("{}")
    (conf / "gx").write_text("a file, not the validations folder")
    config = conf / "exporter.yml"
    catalog = Path(__file__).resolve().parents[1] / "config" / "external_providers.yml"
    config.write_text(
        f"catalog_file: {catalog}\n"
        "dbt: {enabled: true, sources_json: target/sources.json, manifest_json: target/nope.json}\n"
        "quality: {enabled: true, validations_dir: gx}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    with pytest.raises(ConfigError) as info:
        load_exporter(config, environ={})
    assert info.value.errors == [
        f"{config}: dbt.manifest_json: {conf / 'target' / 'nope.json'} does not exist",
        f"{config}: quality.validations_dir: {conf / 'gx'} is not a directory",
    ]
    (conf / "target" / "nope.json").write_text("{}")
    (conf / "gx").unlink()
    (conf / "gx").mkdir()
    loaded = load_exporter(config, environ={})
    assert loaded.dbt.sources_json == str(conf / "target" / "sources.json")
    assert loaded.quality.validations_dir == str(conf / "gx")


def test_responder_paths_follow_the_same_rule(tmp_path: Path) -> None:
    catalog = Path(__file__).resolve().parents[1] / "config" / "external_providers.yml"
    config = tmp_path / "etc" / "responder.yml"
    config.parent.mkdir()
    (tmp_path / "etc" / "bearer").write_text("s3cret\n")
    config.write_text(
        f"catalog_file: {catalog}\n"
        "store: {sqlite_path: data/responder.db}\n"
        "webhook: {bearer_token_file: bearer}\n"
    )
    loaded = load_config(config, environ={})
    assert loaded.store.sqlite_path == str(tmp_path / "etc" / "data" / "responder.db")
    assert loaded.webhook_bearer_token() == "s3cret"


def test_exporter_check_config_reads_the_airflow_password_file(tmp_path: Path) -> None:
    catalog = Path(__file__).resolve().parents[1] / "config" / "external_providers.yml"
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"catalog_file: {catalog}\n"
        "airflow: {enabled: true, base_url: 'http://airflow:8080', password_file: airflow}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_exporter(config, environ={})
    assert info.value.errors == [
        f"{tmp_path / 'airflow'}: <file>: cannot read airflow password: No such file or directory"
    ]
