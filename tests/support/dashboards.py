"""Read the generated Grafana dashboards: their panels and PromQL, variables substituted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "grafana" / "dashboards"

# What Grafana puts in place of its variables when a query runs: every
# provider ("All" is the regex .*), and ranges Prometheus accepts.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$provider": ".*",
}


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref_id: str
    expr: str  # as in the dashboard, with Grafana variables

    @property
    def promql(self) -> str:
        return substitute(self.expr)

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace("${" + variable[1:] + "}", value).replace(variable, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise ValueError(f"unknown Grafana variables {leftover} in {expr!r}")
    return expr


def dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets() -> list[Target]:
    found = []
    for board in dashboards().values():
        for panel in panels(board):
            for target in panel.get("targets", []):
                found.append(
                    Target(board["title"], panel["title"], target["refId"], target["expr"])
                )
    return found
