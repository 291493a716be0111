"""The responder's config loading reports every mistake in one run, as the exporter's does."""

from __future__ import annotations

from pathlib import Path

import pytest

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
