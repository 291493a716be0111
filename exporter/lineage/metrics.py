"""The intake's own metrics, registered in the exporter's process registry (served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REQUEST_RESULTS = (
    "accepted",
    "unauthorized",
    "too_large",
    "timeout",
    "invalid",
    "disconnected",
    "unavailable",
)
EVENT_RESULTS = ("recorded", "kept", "failure", "duplicate", "unmatched", "ignored")


class LineageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "external_lineage_requests",
            "POSTs to /api/v1/lineage by result (accepted or why refused).",
            ["result"],
            registry=registry,
        )
        self.events = Counter(
            "external_lineage_events",
            "Accepted OpenLineage events by type and what they did: recorded (a last "
            "success moved forward), kept (matched, nothing newer), failure (a FAIL/ABORT "
            "counted), duplicate (a failure already counted), unmatched, ignored.",
            ["event_type", "result"],
            registry=registry,
        )
        self.loads = Counter(
            "external_lineage_loads",
            "Catalog datasets a COMPLETE event matched, by whether the last success moved.",
            ["provider", "dataset", "result"],
            registry=registry,
        )
        self.job_failures = Counter(
            "external_lineage_job_failures",
            "FAIL and ABORT events of mapped jobs (a DAG or its tasks), each counted once.",
            ["lineage_namespace", "lineage_job", "event_type"],
            registry=registry,
        )
        self.duration = Histogram(
            "external_lineage_request_duration_seconds",
            "Time to answer a POST to /api/v1/lineage.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )
        for result in REQUEST_RESULTS:
            self.requests.labels(result)
