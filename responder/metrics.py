"""The responder's metrics, on a private registry per app."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from feedguard.core.build import register_build_info

# Every value the dashboards' labels can take (the executor's record results,
# the notifier's kinds, a probe's outcome).
ACTION_RESULTS = ("success", "failure", "dry_run", "skipped")
NOTE_KINDS = ("initial", "update", "resolution", "verification", "approval")
APPROVAL_DECISIONS = ("approved", "denied")
APPROVAL_VIA = ("api", "page", "timeout")
OUTCOMES = ("success", "failure")

# The seed's request latency buckets (0.1 ... 120 s) plus finer ones below 0.1 s:
# a healthy webhook answers in milliseconds.
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120)

# Around runbook 7's 5-minute review threshold; 300 must stay a bucket bound
# (the ResponderDetectionLagHigh rule reads le="300").
DETECTION_BUCKETS = (30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        register_build_info(r)
        self.notifications = Counter(
            "feedguard_responder_notifications_total",
            "Webhook notifications by result (accepted, unauthorized, too_large, "
            "invalid, unavailable, backlog, timeout, disconnected).",
            ["result"],
            registry=r,
        )
        # The child every accepted notification counts (a labels() lookup cost ~1 us).
        self.accepted = self.notifications.labels("accepted")
        self.transitions = Counter(
            "feedguard_responder_alert_transitions_total",
            "Alert transitions applied, by outcome (incident, ignored).",
            ["outcome"],
            registry=r,
        )
        self.duplicates = Counter(
            "feedguard_responder_duplicates_suppressed_total",
            "Alert transitions already recorded (re-sends, HA peers, other replicas).",
            registry=r,
        )
        self.actions = Counter(
            "feedguard_responder_actions_total",
            "Action steps on one target by result (success, failure, dry_run, skipped).",
            ["action", "result"],
            registry=r,
        )
        self.client_ready = Gauge(
            "feedguard_responder_client_ready",
            "1 when the outside client (kubernetes, airflow, runtime_config, slack) passed "
            "its start-up check, 0 while it has not (retried until it does).",
            ["client"],
            registry=r,
        )
        self.open_incidents = Gauge(
            "feedguard_responder_open_incidents",
            "Incidents not yet resolved, by provider and state.",
            ["provider", "state"],
            registry=r,
        )
        self.circuit_open = Gauge(
            "feedguard_responder_circuit_breaker_open",
            "1 while the circuit breaker of an external system is open (half-open counts open).",
            ["circuit"],
            registry=r,
        )
        self.incident_truncated = Gauge(
            "feedguard_responder_incident_truncated_alerts",
            "Alerts Alertmanager left out of an open incident's notifications (max_alerts), "
            "until recovery asked Alertmanager for the rest; 0 when the picture is complete.",
            ["provider"],
            registry=r,
        )
        self.inbox_depth = Gauge(
            "feedguard_responder_inbox_depth",
            "Notifications (alert transitions) recorded and not yet applied.",
            registry=r,
        )
        self.inbox_oldest_age = Gauge(
            "feedguard_responder_inbox_oldest_age_seconds",
            "Age of the oldest transition waiting in the inbox (0 when it is empty).",
            registry=r,
        )
        self.webhook_duration = Histogram(
            "feedguard_responder_webhook_duration_seconds",
            "Time to answer a webhook notification.",
            buckets=WEBHOOK_BUCKETS,
            registry=r,
        )
        self.notes = Counter(
            "feedguard_responder_notes_total",
            "Situation notes by kind and result (success, failure).",
            ["kind", "result"],
            registry=r,
        )
        self.detection_lag = Histogram(
            "feedguard_responder_detection_lag_seconds",
            "Per incident: data stale (last success + SLA) or first failed probe, to the "
            "first notification received (runbook 7: review above 5 minutes).",
            ["provider"],
            buckets=DETECTION_BUCKETS,
            registry=r,
        )
        self.probes = Counter(
            "feedguard_responder_recovery_probes_total",
            "Recovery health probes by result (success, failure).",
            ["provider", "result"],
            registry=r,
        )

        self.approvals = Counter(
            "feedguard_responder_approval_decisions_total",
            "Decisions on steps awaiting approval, by decision (approved, denied) and how "
            "they were made (api, page, timeout).",
            ["decision", "via"],
            registry=r,
        )

    def start_at_zero(
        self,
        actions: Iterable[str],
        probed_providers: Iterable[str],
        providers: Iterable[str] = (),
    ) -> None:
        """Create every label set the dashboards read, at 0, so ``increase()``
        sees the first event after a start (a series born at 1 shows nothing)."""
        for action in actions:
            for result in ACTION_RESULTS:
                self.actions.labels(action, result)
        for kind in NOTE_KINDS:
            for result in OUTCOMES:
                self.notes.labels(kind, result)
        for decision in APPROVAL_DECISIONS:
            for via in APPROVAL_VIA:
                self.approvals.labels(decision, via)
        for provider in probed_providers:
            for result in OUTCOMES:
                self.probes.labels(provider, result)
        for provider in providers:
            self.detection_lag.labels(provider)
