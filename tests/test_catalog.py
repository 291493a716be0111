"""The catalog object the exporter and the responder share."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedguard.core.catalog import Catalog, HealthProbe, Provider

from .conftest import REPO, make_catalog


def test_enabled_datasets_and_lookup() -> None:
    catalog = make_catalog(
        {
            "EIA": {"datasets": ["a", "b"]},
            "OFF": {"enabled": False, "datasets": ["c"]},
            "NOAA": {"datasets": ["d"]},
        }
    )
    assert [p.name for p in catalog.enabled] == ["EIA", "NOAA"]
    assert catalog.datasets() == [("EIA", "a"), ("EIA", "b"), ("NOAA", "d")]
    assert catalog.get("NOAA") is not None
    assert catalog.get("noaa") is None  # names are exact: they are Redis key parts


def test_require_explains_what_is_wrong() -> None:
    catalog = make_catalog({"EIA": {"datasets": ["a"]}, "OFF": {"enabled": False}})
    assert catalog.require("EIA", "a").name == "EIA"
    with pytest.raises(ValueError, match=r"provider 'X' is not in the catalog \(known: EIA, OFF\)"):
        catalog.require("X")
    with pytest.raises(ValueError, match="provider 'OFF' is disabled in the catalog"):
        catalog.require("OFF")
    assert catalog.require("OFF", enabled=False).name == "OFF"
    with pytest.raises(ValueError, match=r"dataset 'z' is not a dataset of provider 'EIA'"):
        catalog.require("EIA", "z")


def test_catalog_built_in_code_is_checked_too() -> None:
    with pytest.raises(ValueError, match="duplicate provider 'eia'"):
        Catalog(providers=(Provider(name="EIA"), Provider(name="eia")))
    with pytest.raises(ValueError, match="datasets\n  \\[1\\] 'a' is listed twice"):
        Provider(name="EIA", datasets=("a", "a"))
    with pytest.raises(ValueError, match="expected_status: must list at least one"):
        HealthProbe(url="http://h/", expected_status=())


def test_seed_catalog_matches_the_runbook() -> None:
    from feedguard.core.catalog import load_catalog

    catalog = load_catalog(REPO / "config" / "external_providers.yml")
    assert [p.name for p in catalog.providers] == ["EIA", "ISO-NE", "MISO", "NOAA"]
    for provider in catalog.providers:
        assert provider.enabled
        assert provider.datasets
        assert provider.health_probe is not None
        assert provider.health_probe.url.startswith("https://")
        assert provider.dags
        assert provider.dashboards
        assert provider.freshness_sla_seconds == 900


def test_streaming_jobs_workloads_and_credentials_are_checked() -> None:
    from feedguard.core.schema import ConfigError

    catalog = make_catalog(
        {
            "ISO-NE": {
                "streaming_jobs": [{"name": "isone-lmp", "config_file": "t/isone-lmp.conf"}],
                "workloads": [{"namespace": "aurum-dev", "selector": "app=external-collector"}],
                "credentials": [
                    {
                        "namespace": "aurum-dev",
                        "name": "external-provider-iso-ne",
                        "expiry_annotation": "feedguard.io/expires-at",
                    }
                ],
            },
            "OFF": {"enabled": False, "streaming_jobs": [{"name": "off"}]},
        }
    )
    assert [(p, j.name) for p, j in catalog.streaming_jobs()] == [("ISO-NE", "isone-lmp")]
    assert [(p, c.name) for p, c in catalog.credentials()] == [
        ("ISO-NE", "external-provider-iso-ne")
    ]
    with pytest.raises(ConfigError) as bad:
        make_catalog(
            {
                "X": {
                    "streaming_jobs": [{"name": "a b"}],
                    "workloads": [{"namespace": "Aurum", "selector": "app in (a,b)"}],
                    "credentials": [{"namespace": "aurum-dev", "name": "Secret_1"}],
                }
            }
        )
    text = "\n".join(bad.value.errors)
    assert "providers[0].streaming_jobs[0].name: must be letters" in text
    assert "providers[0].workloads[0].namespace: must be a Kubernetes object name" in text
    assert "providers[0].workloads[0].selector: must be an equality label selector" in text
    assert "providers[0].credentials[0].name: must be a Kubernetes object name" in text


def test_a_streaming_jobs_config_file_is_relative_to_the_catalogs_folder(tmp_path: Path) -> None:
    from feedguard.core.catalog import load_catalog

    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "providers.yml").write_text(
        "providers:\n"
        "  - name: ISO-NE\n"
        "    streaming_jobs:\n"
        "      - {name: a, config_file: ../seatunnel/a.conf.tmpl}\n"
        "      - {name: b, config_file: /etc/b.conf}\n"
        "      - {name: c}\n"
    )
    (provider,) = load_catalog(folder / "providers.yml").providers
    assert [j.config_file for j in provider.streaming_jobs] == [
        str(folder / "../seatunnel/a.conf.tmpl"),
        "/etc/b.conf",
        None,
    ]
