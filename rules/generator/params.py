"""Deployment parameters of the rule and dashboard generators.

The defaults live in ``params:`` of ``thresholds.yml`` (the committed files are
generated from them); each can be overridden for one run with a command-line
option, so a platform generates its own variant without editing the repository:

    python rules/generator/generate.py --out /tmp/rules \\
        --runbook-base-url https://git.example.com/acme/feedguard/blob/main \\
        --grafana-url https://grafana.example.com --team data-platform

``grafana/generate.py`` takes the same options.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

THRESHOLDS = Path(__file__).resolve().parent / "thresholds.yml"
RUNBOOK = "docs/runbook.md"
FRESHNESS_DASHBOARD = "/d/feedguard-pipeline-freshness/pipeline-freshness"

# A Prometheus label value inside a PromQL string literal and a Grafana uid.
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class Params:
    # Where the repository is browsable; empty: runbook_url is repo-relative.
    runbook_base_url: str
    # Grafana's address: dashboard_url is built on it.
    grafana_url: str
    # The Prometheus job labels of the two services' targets.
    exporter_job: str
    responder_job: str
    # Every alert's team label.
    team: str
    # uid of the Prometheus datasource the dashboards select by default.
    datasource: str

    def runbook_url(self, anchor: str = "") -> str:
        base = self.runbook_base_url.rstrip("/")
        url = f"{base}/{RUNBOOK}" if base else RUNBOOK
        return f"{url}#{anchor}" if anchor else url

    def dashboard_url(self, path: str = FRESHNESS_DASHBOARD) -> str:
        return self.grafana_url.rstrip("/") + path


class ParamsError(Exception):
    """Every wrong parameter, one ``where: what is wrong`` line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for spec in fields(Params):
        parser.add_argument(
            _option(spec.name),
            dest=f"param_{spec.name}",
            metavar=spec.name.upper(),
            help=f"override params.{spec.name} of rules/generator/thresholds.yml",
        )


def _url_error(value: str, may_be_empty: bool) -> str | None:
    if not value and may_be_empty:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"expected an absolute http(s) URL, got {value!r}"
    if parts.query or parts.fragment:
        return f"expected a URL without query or fragment, got {value!r}"
    return None


def _error(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__} {value!r}"
    if name in ("runbook_base_url", "grafana_url"):
        return _url_error(value, may_be_empty=name == "runbook_base_url")
    if not _PLAIN.match(value):
        return f"expected letters, digits, '_', '.', ':' or '-', got {value!r}"
    return None


def load(args: argparse.Namespace | None = None, path: Path = THRESHOLDS) -> Params:
    """``params:`` of ``path`` with the command-line overrides; ParamsError lists every mistake."""
    raw = (yaml.safe_load(path.read_text()) or {}).get("params") or {}
    values: dict[str, Any] = {}
    errors = []
    for spec in fields(Params):
        override = getattr(args, f"param_{spec.name}", None) if args is not None else None
        if override is not None:
            where, value = _option(spec.name), override
        elif spec.name in raw:
            where, value = f"{path.name}: params.{spec.name}", raw[spec.name]
        else:
            errors.append(f"{path.name}: params.{spec.name}: missing")
            continue
        message = _error(spec.name, value)
        if message:
            errors.append(f"{where}: {message}")
        values[spec.name] = value
    unknown = sorted(set(raw) - {spec.name for spec in fields(Params)})
    errors += [f"{path.name}: params.{name}: unknown parameter" for name in unknown]
    if errors:
        raise ParamsError(errors)
    return Params(**values)
