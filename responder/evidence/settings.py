"""The ``evidence:`` section of responder.yml (docs/evidence.md)."""

from __future__ import annotations

from dataclasses import dataclass

from feedguard.core.schema import check_positive, field


@dataclass(frozen=True)
class EvidenceSettings:
    # On for providers whose catalog entry names workloads or credentials; the
    # cluster connection is actions.kubernetes (same service account, deploy/).
    enabled: bool = True
    since_seconds: int = field(1800, check=check_positive, doc="runbook 4: --since=30m")
    tail_lines: int = field(2000, check=check_positive)
    limit_bytes: int = field(262_144, check=check_positive, doc="per container log read")
    max_pods: int = field(10, check=check_positive, doc="per workload")
    max_error_lines: int = field(50, check=check_positive, doc="kept per workload, newest")
    max_line_chars: int = field(300, check=check_positive)
    # A credential changed this long before the first alert is called out.
    rotation_window_seconds: float = field(86_400.0, check=check_positive)
    concurrency: int = field(4, check=check_positive)
    timeout_seconds: float = field(30.0, check=check_positive, doc="one gathering, whole")
    keep_snapshots: int = field(24, check=check_positive, doc="per incident, newest")
