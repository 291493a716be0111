"""The three collectors inside the exporter: off by default, on by config, isolated."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from feedguard.core.airflow_api import AirflowSettings
from feedguard.core.settings import RedisSettings
from feedguard.exporter.app import create_app
from feedguard.exporter.collectors.dbt import DbtSettings
from feedguard.exporter.collectors.quality import QualitySettings
from feedguard.exporter.config import ConfigError, ExporterConfig, load_config

from .conftest import make_catalog
from .support.fake_airflow2 import FakeAirflow2
from .support.services import free_port
from .test_quality_collector import T0, write_result

DBT_DATA = Path(__file__).parent / "data" / "dbt"
CATALOG: dict[str, dict[str, object]] = {
    "EIA": {"datasets": ["a"], "dags": ["external_data_ingest"]}
}


def up_lines(text: str) -> dict[str, str]:
    prefix = 'external_exporter_collector_up{collector="'
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, _, rest = line[len(prefix) :].partition('"}')
            out[name] = rest.strip()
    return out


def base_config(redis_url: str) -> ExporterConfig:
    config = ExporterConfig(catalog=make_catalog(CATALOG))
    return config.model_copy(
        update={
            "redis": RedisSettings(url=redis_url),
        }
    )


def airflow_at(server: Any, password: str) -> AirflowSettings:
    """The DAG collector on, against the fake Airflow ``server``, as user admin."""
    base_url = str(server.make_url("")).rstrip("/")
    return AirflowSettings(enabled=True, base_url=base_url, username="admin", password=password)


async def test_off_by_default(aiohttp_client: Any, redis_url: str) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(base_config(redis_url)))
    text = await (await client.get("/metrics")).text()
    assert set(up_lines(text)) == {"redis", "probes"}
    assert "external_dag_" not in text


async def test_all_three_on_and_healthy(
    aiohttp_client: Any, aiohttp_server: Any, redis_url: str, tmp_path: Path
) -> None:
    fake = FakeAirflow2(username="admin", password="s3cret")
    fake.add_dag("external_data_ingest", is_paused=True)
    server = await aiohttp_server(fake.app())
    shutil.copytree(DBT_DATA / "dbt_1_12", tmp_path / "target")
    write_result(tmp_path / "validations", "external_dbt_outputs", "__none__", T0, success=True)
    config = base_config(redis_url).model_copy(
        update={
            "airflow": airflow_at(server, "s3cret"),
            "dbt": DbtSettings(
                enabled=True,
                sources_json=str(tmp_path / "target" / "sources.json"),
                checked_sources=("*",),
            ),
            "quality": QualitySettings(enabled=True, validations_dir=str(tmp_path / "validations")),
        }
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config))
    text = await (await client.get("/metrics")).text()
    assert up_lines(text) == {
        "redis": "1.0",
        "probes": "1.0",
        "airflow": "1.0",
        "dbt": "1.0",
        "quality": "1.0",
    }
    assert 'external_dag_paused{dag_id="external_data_ingest"} 1.0' in text
    assert (
        'external_dbt_source_freshness_status{package="energy_analytics",source="iceberg_external",'
        'status="runtime error",table="noaa_ghcnd_daily",'
        'unique_id="source.energy_analytics.iceberg_external.noaa_ghcnd_daily"} 1.0'
    ) in text
    assert 'external_quality_suite_success{suite="external_dbt_outputs"} 1.0' in text


async def test_broken_sources_do_not_break_the_others(
    aiohttp_client: Any, redis_url: str, tmp_path: Path
) -> None:
    write_result(tmp_path / "validations", "external_dbt_outputs", "__none__", T0, success=False)
    # Nothing listens there; the dbt artifact does not exist.
    config = base_config(redis_url).model_copy(
        update={
            "airflow": AirflowSettings(
                enabled=True, base_url=f"http://127.0.0.1:{free_port()}", password="x"
            ),
            "dbt": DbtSettings(
                enabled=True, sources_json=str(tmp_path / "target" / "sources.json")
            ),
            "quality": QualitySettings(enabled=True, validations_dir=str(tmp_path / "validations")),
        }
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config))
    with capture_logs() as logs:
        response = await client.get("/metrics")
    assert response.status == 200
    text = await response.text()
    ups = up_lines(text)
    assert (ups["airflow"], ups["dbt"], ups["quality"], ups["redis"]) == (
        "0.0",
        "0.0",
        "1.0",
        "1.0",
    )
    assert 'external_quality_suite_success{suite="external_dbt_outputs"} 0.0' in text
    reasons = {e.get("collector"): e.get("error", "") for e in logs if e.get("collector")}
    assert "AirflowUnavailable" in reasons["airflow"]
    assert "sources.json: dbt sources.json is missing" in reasons["dbt"]


async def test_airflow_401_is_collector_down_not_a_failed_scrape(
    aiohttp_client: Any, aiohttp_server: Any, redis_url: str
) -> None:
    fake = FakeAirflow2(username="admin", password="s3cret")
    fake.add_dag("external_data_ingest")
    server = await aiohttp_server(fake.app())
    config = base_config(redis_url).model_copy(update={"airflow": airflow_at(server, "wrong")})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(config))
    with capture_logs() as logs:
        response = await client.get("/metrics")
    assert response.status == 200
    assert up_lines(await response.text())["airflow"] == "0.0"
    assert any("HTTP 401" in str(e.get("error")) for e in logs)


def test_config_sections_validate(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yml"
    catalog.write_text("providers:\n  - name: EIA\n    datasets: [a]\n")
    config_file = tmp_path / "exporter.yml"
    config_file.write_text(
        "catalog_file: catalog.yml\n"
        "airflow:\n  enabled: true\n  version: 4\n  base_url: airflow:8080\n"
        "dbt:\n  enabled: yes-please\n"
        "quality:\n  suites: external_dbt_outputs\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, environ={})
    text = "\n".join(caught.value.errors)
    assert "airflow.version: expected one of" in text
    assert "airflow.base_url: expected an http(s) URL" in text
    assert "dbt.enabled: expected true or false" in text
    assert "quality.suites: expected a list" in text

    config_file.write_text(
        "catalog_file: catalog.yml\nairflow:\n  enabled: true\n  base_url: http://af:8080\n"
    )
    with pytest.raises(ConfigError, match=r"airflow\.password: Airflow is enabled but no password"):
        load_config(config_file, environ={})
    loaded = load_config(
        config_file,
        environ={"FEEDGUARD_AIRFLOW_PASSWORD": "from-env", "FEEDGUARD_AIRFLOW_VERSION": "3"},
    )
    assert loaded.airflow.read_password() == "from-env"
    assert loaded.airflow.api_version == 3
    assert loaded.dbt.enabled is False
    assert loaded.quality.enabled is False
