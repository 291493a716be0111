"""The ``evidence:`` section of responder.yml (docs/evidence.md)."""

from __future__ import annotations

from pydantic import Field

from feedguard.core.schema import ConfigModel, PositiveFloat, PositiveInt


class EvidenceSettings(ConfigModel):
    # On for providers whose catalog entry names workloads or credentials; the
    # cluster connection is actions.kubernetes (same service account, deploy/).
    enabled: bool = True
    since_seconds: PositiveInt = Field(1800, description="runbook 4: --since=30m")
    tail_lines: PositiveInt = 2000
    limit_bytes: PositiveInt = Field(262_144, description="per container log read")
    max_pods: PositiveInt = Field(10, description="per workload")
    max_error_lines: PositiveInt = Field(50, description="kept per workload, newest")
    max_line_chars: PositiveInt = 300
    # A credential changed this long before the first alert is called out.
    rotation_window_seconds: PositiveFloat = 86_400.0
    concurrency: PositiveInt = 4
    timeout_seconds: PositiveFloat = Field(30.0, description="one gathering, whole")
    keep_snapshots: PositiveInt = Field(24, description="per incident, newest")
