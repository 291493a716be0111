"""record-success, as the CLI a task runs and as the function it calls, against real Redis."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from feedguard.core.record import MAX_CLOCK_SKEW_SECONDS, record_success, record_success_from_config
from feedguard.core.schema import ConfigError

from .conftest import make_catalog
from .support.services import free_port

EXPORTER = str(Path(sys.executable).parent / "feedguard-exporter")
KEY = "external:last_success:EIA:rto"

CATALOG = """\
providers:
  - name: EIA
    datasets: [rto, fuel]
  - name: PAUSED
    enabled: false
    datasets: [daily]
"""


@pytest.fixture
def config_file(tmp_path: Path, redis_url: str) -> Path:
    (tmp_path / "catalog.yml").write_text(CATALOG)
    path = tmp_path / "exporter.yml"
    path.write_text(f"catalog_file: catalog.yml\nredis: {{url: '{redis_url}'}}\n")
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXPORTER, "record-success", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_function_records_and_never_moves_back(redis_client: redis.Redis) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    assert record_success(redis_client, catalog, "EIA", "rto", 1700000100.5) is True
    assert float(redis_client.get(KEY) or 0) == 1700000100.5
    # A backfill finishing late with an older load time keeps the newer value.
    assert record_success(redis_client, catalog, "EIA", "rto", 1700000000) is False
    assert float(redis_client.get(KEY) or 0) == 1700000100.5
    before = time.time()
    assert record_success(redis_client, catalog, "EIA", "rto") is True
    assert float(redis_client.get(KEY) or 0) >= before


def test_function_overwrites_garbage(redis_client: redis.Redis) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    redis_client.set(KEY, "not a number")
    assert record_success(redis_client, catalog, "EIA", "rto", 1700000000) is True
    assert float(redis_client.get(KEY) or 0) == 1700000000


@pytest.mark.parametrize(
    ("provider", "dataset", "at", "message"),
    [
        ("ACME", "rto", None, "provider 'ACME' is not in the catalog (known: EIA)"),
        ("EIA", "nope", None, "dataset 'nope' is not a dataset of provider 'EIA' (known: rto)"),
        ("eia", "rto", None, "provider 'eia' is not in the catalog"),
        ("EIA", "rto", 1e12, "in the future"),
        ("EIA", "rto", float("nan"), "must be positive epoch seconds"),
        ("EIA", "rto", -1.0, "must be positive epoch seconds"),
    ],
)
def test_function_refuses_and_writes_nothing(
    redis_client: redis.Redis, provider: str, dataset: str, at: float | None, message: str
) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    with pytest.raises(ValueError, match=re.escape(message)):
        record_success(redis_client, catalog, provider, dataset, at)
    assert redis_client.keys("*") == []


def test_clock_skew_allowance(redis_client: redis.Redis) -> None:
    catalog = make_catalog({"EIA": {"datasets": ["rto"]}})
    now = 1700000000.0
    assert record_success(redis_client, catalog, "EIA", "rto", now + 60, now=now) is True
    with pytest.raises(ValueError, match="in the future"):
        record_success(
            redis_client, catalog, "EIA", "rto", now + MAX_CLOCK_SKEW_SECONDS + 1, now=now
        )


def test_cli_records(config_file: Path, redis_client: redis.Redis) -> None:
    result = cli(config_file, "--provider", "EIA", "--dataset", "rto", "--at", "1700000000")
    assert (result.returncode, result.stdout.strip()) == (0, "recorded"), result.stderr
    assert float(redis_client.get(KEY) or 0) == 1700000000

    older = cli(config_file, "--provider", "EIA", "--dataset", "rto", "--at", "1600000000")
    assert older.returncode == 0, older.stderr
    assert older.stdout.strip() == "kept the newer value already recorded"
    assert float(redis_client.get(KEY) or 0) == 1700000000

    now = cli(config_file, "--provider", "EIA", "--dataset", "rto")
    assert now.returncode == 0, now.stderr
    assert float(redis_client.get(KEY) or 0) > 1700000000


def test_cli_accepts_a_provider_disabled_for_now(
    config_file: Path, redis_client: redis.Redis
) -> None:
    result = cli(config_file, "--provider", "PAUSED", "--dataset", "daily", "--at", "1700000000")
    assert result.returncode == 0, result.stderr
    assert redis_client.get("external:last_success:PAUSED:daily") == b"1700000000.0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--provider", "ACME", "--dataset", "rto"],
            "feedguard-exporter: record-success: provider 'ACME' is not in the catalog "
            "(known: EIA, PAUSED)",
        ),
        (
            ["--provider", "EIA", "--dataset", "lmp"],
            "feedguard-exporter: record-success: dataset 'lmp' is not a dataset of provider "
            "'EIA' (known: rto, fuel)",
        ),
        (["--provider", "EIA", "--dataset", "rto", "--at", "99999999999"], "in the future"),
        (["--provider", "EIA", "--dataset", "rto", "--at", "soon"], "invalid float value"),
        (["--provider", "EIA"], "the following arguments are required: --dataset"),
    ],
)
def test_cli_refuses_with_exit_2_and_writes_nothing(
    config_file: Path, redis_client: redis.Redis, args: list[str], message: str
) -> None:
    result = cli(config_file, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert redis_client.keys("*") == []


def test_cli_redis_down_exits_1(tmp_path: Path) -> None:
    (tmp_path / "catalog.yml").write_text(CATALOG)
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"catalog_file: catalog.yml\nredis: {{url: 'redis://127.0.0.1:{free_port()}'}}\n"
    )
    result = cli(config, "--provider", "EIA", "--dataset", "rto")
    assert result.returncode == 1
    assert result.stderr.startswith("feedguard-exporter: record-success: redis: ")


def test_cli_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("catalog_file: missing.yml\n")
    result = cli(config, "--provider", "EIA", "--dataset", "rto")
    assert result.returncode == 2
    assert (
        result.stderr
        == f"{tmp_path / 'missing.yml'}: <file>: cannot read: No such file or directory\n"
    )


def test_from_config_for_airflow_tasks(
    config_file: Path, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # An explicit settings file.
    assert record_success_from_config("EIA", "rto", 1700000000, config_file) is True
    assert float(redis_client.get(KEY) or 0) == 1700000000

    # The worker's environment only: settings file named by a variable.
    environ = {"FEEDGUARD_EXPORTER_CONFIG": str(config_file)}
    assert record_success_from_config("EIA", "fuel", 1700000001, environ=environ) is True
    assert float(redis_client.get("external:last_success:EIA:fuel") or 0) == 1700000001

    # No file at all: catalog and Redis from FEEDGUARD_* variables.
    environ = {
        "FEEDGUARD_CATALOG_FILE": str(tmp_path / "catalog.yml"),
        "FEEDGUARD_REDIS_URL": redis_url,
    }
    assert record_success_from_config("EIA", "rto", 1700000005, environ=environ) is True
    assert float(redis_client.get(KEY) or 0) == 1700000005

    with pytest.raises(ValueError, match="not in the catalog"):
        record_success_from_config("ACME", "rto", environ=environ)
    with pytest.raises(ConfigError) as caught:
        record_success_from_config("EIA", "rto", environ={**environ, "FEEDGUARD_REDIS_URL": "x"})
    assert caught.value.errors[0].startswith("env FEEDGUARD_REDIS_URL: redis.url: ")
    assert sorted(redis_client.keys("*")) == [b"external:last_success:EIA:fuel", KEY.encode()]


def test_record_reads_only_the_catalog_and_redis(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    # The exporter's file may name secrets a pipeline worker does not have (and
    # settings it cannot judge): recording a success reads none of them.
    (tmp_path / "catalog.yml").write_text(CATALOG)
    config = tmp_path / "exporter.yml"
    config.write_text(
        "catalog_file: catalog.yml\n"
        f"redis: {{url: '{redis_url}'}}\n"
        "airflow: {enabled: true, base_url: 'http://127.0.0.1:1', "
        "password_file: /nonexistent/airflow-password}\n"
        "probes: {concurrency: 4}\n"
    )
    assert record_success_from_config("EIA", "rto", 1700000000, config) is True
    result = cli(config, "--provider", "EIA", "--dataset", "fuel", "--at", "1700000001")
    assert (result.returncode, result.stderr) == (0, "")
    assert float(redis_client.get("external:last_success:EIA:fuel") or 0) == 1700000001
