"""Settings of the runbook's actions: the ``actions:`` section of responder.yml."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionsSettings:
    """Filled in by the actions work (issue 5): Kubernetes, Airflow, runtime-config targets."""
