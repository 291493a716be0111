"""Settings and catalog validation: every mistake as ``file: path.to.key: what is wrong``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from feedguard.core.catalog import load_catalog
from feedguard.core.env import env_names
from feedguard.core.schema import ConfigError
from feedguard.exporter.config import load_config

from .conftest import REPO

EXPORTER = str(Path(sys.executable).parent / "feedguard-exporter")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


GOOD_CATALOG = """
providers:
  - name: EIA
    datasets: [a, b]
    health_probe: {url: "http://127.0.0.1:9/health"}
"""


def errors_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return caught.value.errors


def test_shipped_config_is_valid() -> None:
    config = load_config(REPO / "config" / "exporter.yml", {})
    names = [p.name for p in config.providers.providers]
    assert names == ["EIA", "ISO-NE", "MISO", "NOAA"]
    assert all(p.freshness_sla_seconds == 900 for p in config.providers.providers)
    assert {p.name for p in config.providers.providers if p.fallback_mirror} == {"NOAA", "ISO-NE"}
    assert all(p.health_probe is not None for p in config.providers.providers)
    assert config.listen == "127.0.0.1:9816"


def test_every_catalog_mistake_in_one_run(tmp_path: Path) -> None:
    catalog = write(
        tmp_path / "catalog.yml",
        """
        providers:
          - name: EIA
            datasets: [a, a, "b c"]
            colour: blue
            health_probe: {url: "ftp://x", timeout_seconds: -1}
          - name: eia
            enabled: "yes"
          - name: "bad:name"
            health_probe: {url: "http://h:99999/", method: DELETE, expected_status: [700]}
          - name: NOAA
            freshness_sla_seconds: fifteen
            dashboards: [{title: t}]
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(catalog)
    src = str(catalog)
    assert sorted(caught.value.errors) == sorted(
        [
            f"{src}: providers[1].name: duplicate provider 'eia' (first at providers[0])",
            f"{src}: providers[0].colour: unknown key (expected one of: consumer_probes, "
            "credentials, dags, dashboards, datasets, dbt_select, description, enabled, "
            "fallback_mirror, freshness_sla_seconds, health_probe, lineage, name, quality_suite, "
            "streaming_jobs, workloads)",
            f"{src}: providers[0].datasets: [1] 'a' is listed twice (first at [0]); [2] must be "
            "letters, digits, '_', '.' or '-' (no ':' or spaces), got 'b c'",
            f"{src}: providers[0].health_probe.url: expected an http(s) URL with a host, "
            "got 'ftp://x'",
            f"{src}: providers[0].health_probe.timeout_seconds: must be greater than 0, got -1.0",
            f"{src}: providers[1].enabled: expected true or false, got str 'yes'",
            f"{src}: providers[2].name: must be letters, digits, '_', '.' or '-' "
            "(no ':' or spaces), got 'bad:name'",
            f"{src}: providers[2].health_probe.url: Port out of range 0-65535: 'http://h:99999/'",
            f"{src}: providers[2].health_probe.method: expected one of 'GET', 'HEAD', 'POST', "
            "got str 'DELETE'",
            f"{src}: providers[3].freshness_sla_seconds: expected a number, got str 'fifteen'",
            f"{src}: providers[3].dashboards[0].url: required",
        ]
    )


def test_cross_field_problems_of_a_valid_entry(tmp_path: Path) -> None:
    catalog = write(
        tmp_path / "catalog.yml",
        """
        providers:
          - name: EIA
            health_probe: {url: "http://h/", expected_status: [700]}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(catalog)
    assert caught.value.errors == [
        f"{catalog}: providers[0].health_probe.expected_status: not HTTP status codes: [700]"
    ]


def test_duplicate_yaml_keys_reported_with_their_path(tmp_path: Path) -> None:
    catalog = write(
        tmp_path / "catalog.yml",
        """
        providers:
          - name: EIA
            enabled: true
            enabled: false
            health_probe:
              url: "http://a/"
              url: "http://b/"
        providers: []
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(catalog)
    assert caught.value.errors == [
        f"{catalog}: providers[0].enabled: duplicate key on line 4 (first defined on line 3)",
        f"{catalog}: providers[0].health_probe.url: duplicate key on line 7 "
        "(first defined on line 6)",
        f"{catalog}: providers: duplicate key on line 8 (first defined on line 1)",
    ]


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    catalog = write(
        tmp_path / "catalog.yml",
        """
        probe: &probe {url: "http://h/", timeout_seconds: 5}
        providers:
          - name: EIA
            health_probe:
              <<: *probe
              timeout_seconds: 2
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(catalog)
    # Only the stray top-level key is wrong; the override of a merged key is fine.
    assert caught.value.errors == [
        f"{catalog}: probe: unknown key (expected one of: providers)",
    ]


def test_settings_and_catalog_errors_reported_together(tmp_path: Path) -> None:
    write(tmp_path / "catalog.yml", "providers:\n  - name: EIA\n    enabled: sometimes\n")
    config = write(
        tmp_path / "exporter.yml",
        """
        listen: nope
        catalog_file: catalog.yml
        redis: {url: "http://x", socket_timeout_seconds: fast}
        probes: {concurrency: 2.5}
        log: {level: loud, format: xml}
        """,
    )
    assert errors_of(config) == [
        f"{config}: listen: expected HOST:PORT, got 'nope'",
        f"{config}: redis.url: expected a redis://, rediss:// or unix:// URL, got 'http://x'",
        f"{config}: redis.socket_timeout_seconds: expected a number, got str 'fast'",
        f"{config}: probes.concurrency: expected an integer, got float 2.5",
        f"{config}: log.level: expected debug, info, warning or error, got 'loud'",
        f"{config}: log.format: expected one of 'auto', 'json', 'console', got str 'xml'",
        f"{tmp_path / 'catalog.yml'}: providers[0].enabled: expected true or false, "
        "got str 'sometimes'",
    ]


def test_missing_catalog_and_unreadable_password_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "exporter.yml",
        f"""
        catalog_file: nowhere.yml
        redis: {{password_file: {tmp_path / "no-secret"}}}
        """,
    )
    assert errors_of(config) == [
        f"{tmp_path / 'nowhere.yml'}: <file>: cannot read: No such file or directory",
        f"{tmp_path / 'no-secret'}: <file>: cannot read redis password: No such file or directory",
    ]


def test_environment_overrides(tmp_path: Path) -> None:
    write(tmp_path / "catalog.yml", GOOD_CATALOG)
    config_file = write(tmp_path / "exporter.yml", "catalog_file: catalog.yml\n")
    config = load_config(
        config_file,
        {
            "FEEDGUARD_REDIS_URL": "redis://127.0.0.1:7000/3",
            "FEEDGUARD_PROBES_ENABLED": "false",
            "FEEDGUARD_PROBES_CONCURRENCY": "4",
            "FEEDGUARD_SCRAPE_DEADLINE_MARGIN_SECONDS": "0.25",
            # A password that looks like a number or a boolean stays a string.
            "FEEDGUARD_REDIS_PASSWORD": "12345",
            "FEEDGUARD_LISTEN": "0.0.0.0:9999",
            "FEEDGUARD_LOG_FORMAT": "json",
            "UNRELATED": "x",
        },
    )
    assert config.redis.url == "redis://127.0.0.1:7000/3"
    assert config.probes.enabled is False
    assert config.probes.concurrency == 4
    assert config.scrape.deadline_margin_seconds == 0.25
    assert config.redis_password() == "12345"
    assert config.listen == "0.0.0.0:9999"
    assert config.log.format == "json"


def test_environment_can_name_the_catalog(tmp_path: Path) -> None:
    catalog = write(tmp_path / "elsewhere.yml", GOOD_CATALOG)
    config = load_config(None, {"FEEDGUARD_CATALOG_FILE": str(catalog)})
    assert [p.name for p in config.providers.providers] == ["EIA"]


def test_invalid_overrides_name_the_variable(tmp_path: Path) -> None:
    write(tmp_path / "catalog.yml", GOOD_CATALOG)
    config_file = write(tmp_path / "exporter.yml", "catalog_file: catalog.yml\nlisten: bad\n")
    errors = errors_of(
        config_file,
        {
            "FEEDGUARD_PROBES_ENABLED": "maybe",
            "FEEDGUARD_REDIS_URL": "localhost:6379",
            "FEEDGUARD_SCRAPE_DEFAULT_TIMEOUT_SECONDS": "-3",
        },
    )
    assert errors == [
        f"{config_file}: listen: expected HOST:PORT, got 'bad'",
        "env FEEDGUARD_REDIS_URL: redis.url: expected a redis://, rediss:// or unix:// URL, "
        "got 'localhost:6379'",
        "env FEEDGUARD_SCRAPE_DEFAULT_TIMEOUT_SECONDS: scrape.default_timeout_seconds: "
        "must be greater than 0, got -3.0",
        "env FEEDGUARD_PROBES_ENABLED: probes.enabled: expected true or false, got str 'maybe'",
    ]


def test_every_scalar_setting_has_an_environment_name() -> None:
    from feedguard.exporter.config import ExporterConfig

    names = env_names(ExporterConfig)
    for expected in (
        "FEEDGUARD_LISTEN",
        "FEEDGUARD_CATALOG_FILE",
        "FEEDGUARD_REDIS_URL",
        "FEEDGUARD_REDIS_PASSWORD",
        "FEEDGUARD_REDIS_PASSWORD_FILE",
        "FEEDGUARD_REDIS_SOCKET_TIMEOUT_SECONDS",
        "FEEDGUARD_SCRAPE_DEFAULT_TIMEOUT_SECONDS",
        "FEEDGUARD_SCRAPE_DEADLINE_MARGIN_SECONDS",
        "FEEDGUARD_SCRAPE_MAX_TIMEOUT_SECONDS",
        "FEEDGUARD_PROBES_ENABLED",
        "FEEDGUARD_PROBES_CONCURRENCY",
        "FEEDGUARD_PROBES_USER_AGENT",
        "FEEDGUARD_LOG_LEVEL",
        "FEEDGUARD_LOG_FORMAT",
    ):
        assert expected in names
    # The inline catalog is structured data: it has no variable.
    assert not any(name.startswith("FEEDGUARD_CATALOG_PROVIDERS") for name in names)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXPORTER, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


def test_check_config_accepts_the_shipped_config() -> None:
    result = run_cli("check-config", "--config", "config/exporter.yml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 4 providers, 10 enabled datasets"


def test_check_config_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    write(
        tmp_path / "catalog.yml",
        """
        providers:
          - name: EIA
            health_probe: {url: "not a url"}
          - name: EIA
        """,
    )
    config = write(
        tmp_path / "exporter.yml",
        "catalog_file: catalog.yml\nbogus: 1\nprobes: {enabled: perhaps}\n",
    )
    result = run_cli("check-config", "--config", str(config), env={"FEEDGUARD_LISTEN": "x"})
    assert result.returncode == 2
    assert result.stdout == ""
    catalog = tmp_path / "catalog.yml"
    assert result.stderr.splitlines() == [
        f"{config}: bogus: unknown key (expected one of: "
        + ", ".join(sorted(_exporter_keys()))
        + ")",
        "env FEEDGUARD_LISTEN: listen: expected HOST:PORT, got 'x'",
        f"{config}: probes.enabled: expected true or false, got str 'perhaps'",
        f"{catalog}: providers[1].name: duplicate provider 'EIA' (first at providers[0])",
        f"{catalog}: providers[0].health_probe.url: expected an http(s) URL with a host, "
        "got 'not a url'",
    ]


def _exporter_keys() -> list[str]:
    from feedguard.exporter.config import ExporterConfig

    return list(ExporterConfig.model_fields)


def test_python_dash_m_and_config_from_environment(tmp_path: Path) -> None:
    write(tmp_path / "catalog.yml", GOOD_CATALOG)
    config = write(tmp_path / "exporter.yml", "catalog_file: catalog.yml\n")
    result = subprocess.run(
        [sys.executable, "-m", "feedguard.exporter", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "FEEDGUARD_EXPORTER_CONFIG": str(config)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 1 providers, 2 enabled datasets"


def test_unparseable_yaml_is_one_clear_error(tmp_path: Path) -> None:
    config = write(tmp_path / "exporter.yml", "redis: [unclosed\n")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}: line 2 column 1: ")


def test_unreadable_or_empty_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"providers:\n  - name: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(latin)
    assert caught.value.errors == [f"{latin}: <file>: not UTF-8 text: invalid continuation byte"]

    empty = write(tmp_path / "empty.yml", "# nothing here\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(empty)
    assert caught.value.errors == [f"{empty}: <root>: the catalog is empty"]

    no_providers = write(tmp_path / "none.yml", "providers:\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(no_providers)
    assert caught.value.errors == [f"{no_providers}: providers: expected a list, got null"]
