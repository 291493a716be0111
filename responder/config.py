"""The responder's one frozen configuration object, from YAML plus FEEDGUARD_* overrides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field, model_validator

from feedguard.core.catalog import Catalog
from feedguard.core.http_hardening import HttpSettings
from feedguard.core.schema import (
    NO_ENV,
    AtLeastOne,
    ConfigError,
    ConfigModel,
    DbtSelector,
    HttpUrl,
    Items,
    Listen,
    Name,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Secret,
    ServiceSettings,
    check,
    read_secret,
)
from feedguard.core.service_config import load_service_config
from feedguard.core.settings import LogSettings, RedisSettings
from feedguard.core.tracing import TracingSettings

from .actions.settings import ActionsSettings
from .evidence.settings import EvidenceSettings
from .matchers import Matcher, parse_matchers
from .notes.settings import NotesSettings

DEFAULT_LISTEN = "127.0.0.1:9817"
MiB = 1024 * 1024
# The heartbeat renews a lease every third of it: at most once a second.
MIN_LEASE_SECONDS = 3.0


def _check_matchers(values: Any) -> str | None:
    for index, value in enumerate(values):
        try:
            parse_matchers(str(value))
        except ValueError as exc:
            return f"item {index}: {exc}"
    return None


class StoreSettings(ConfigModel):
    # sqlite: one replica, a file; redis: several replicas sharing ``redis``.
    backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = "var/responder.db"
    key_prefix: str = "feedguard:"
    # How long a delivered alert transition is remembered to suppress re-sends.
    dedupe_ttl_seconds: PositiveFloat = 30 * 86400.0


class WebhookSettings(ConfigModel):
    # Alertmanager's http_config sends one Authorization header: Bearer or Basic.
    # With none of these set the webhook is open (logged loudly at start-up).
    bearer_token: Secret = Field(None, description="prefer FEEDGUARD_WEBHOOK_BEARER_TOKEN")
    bearer_token_file: str | None = None
    basic_username: str | None = None
    basic_password: Secret = Field(None, description="prefer FEEDGUARD_WEBHOOK_BASIC_PASSWORD")
    basic_password_file: str | None = None
    max_body_bytes: PositiveInt = MiB
    # A sender slower than these is cut off (a byte every 10 s must not hold a handler):
    # the request line and headers from the connection's start or the last answer
    # (also how long an idle kept-alive connection stays open), then the whole body.
    header_timeout_seconds: PositiveFloat = 10.0
    body_timeout_seconds: PositiveFloat = 10.0


class FeatureSettings(ConfigModel):
    # Bearer token for /runtime-config/v1/features/*; unset = the API answers 503.
    token: Secret = Field(None, description="prefer FEEDGUARD_FEATURES_TOKEN")
    token_file: str | None = None


class ExecutorSettings(ConfigModel):
    timeout_seconds: PositiveFloat = 30.0
    attempts: AtLeastOne = 3
    backoff_initial_seconds: NonNegativeFloat = 1.0
    backoff_factor: PositiveFloat = 2.0
    # A 429 or 503 with Retry-After makes the pause before the next attempt at least
    # that long, but never longer than this (0: Retry-After is ignored).
    max_retry_after_seconds: NonNegativeFloat = 60.0
    circuit_failure_threshold: AtLeastOne = 5
    circuit_reset_seconds: PositiveFloat = 300.0
    # A replica running an incident (or posting a note) holds a lease this long,
    # renewed by a heartbeat every third of it while the work runs, so a step may
    # take longer than the lease; a survivor takes a dead replica's work over
    # within about one lease (docs/responder.md#replicas).
    lease_seconds: PositiveFloat = 15.0
    # A step that failed for transient reasons only (connection error, timeout, 5xx,
    # open breaker) is put back to pending this many times, each once its breaker
    # lets a call through; then it needs a human (POST .../retry).
    auto_retries: NonNegativeInt = 3

    @model_validator(mode="after")
    def _lease_allows_heartbeats(self) -> ExecutorSettings:
        if self.lease_seconds < MIN_LEASE_SECONDS:
            raise ValueError(
                f"lease_seconds: must be at least {MIN_LEASE_SECONDS:g}s: it is renewed every "
                f"third of it, and a shorter one is lost to any pause of the process"
            )
        return self


class RecoverySettings(ConfigModel):
    probes_required: AtLeastOne = 2
    probe_interval_seconds: NonNegativeFloat = 30.0
    user_agent: str = "feedguard-responder/0.1 (+recovery probe)"


class DbtTestSettings(ConfigModel):
    """Runbook 4's ``dbt test --select mart_external_series_catalog+``: verified recovery
    also waits for a passing run of it in dbt's run_results.json."""

    enabled: bool = False
    run_results_path: str = Field(
        "target/run_results.json", description="dbt's run_results.json (under its target-path)"
    )
    # dbt's --select, as the runbook runs it; a `dbt test`/`dbt build` covers it when
    # its --select names every space-separated part (or it selected everything).
    # A provider's dbt_select in the catalog overrides it.
    select: DbtSelector = "mart_external_series_catalog+"


class VerificationSettings(ConfigModel):
    """Verified recovery (runbook 5.3-5.4): after the backfill is triggered, follow its
    DAG run to a final state, then wait for the quality suite's result (and, with
    ``dbt_tests``, a dbt test run) newer than the run's end; the incident resolves only
    then (docs/responder.md#verified-recovery)."""

    enabled: bool = False
    # The GX suite (the runbook's checkpoint external_dbt_outputs); a provider's
    # quality_suite in the catalog overrides it.
    suite: Name = "external_dbt_outputs"
    validations_dir: str = Field(
        "gx/uncommitted/validations", description="a file-mode GX context's validations store"
    )
    # Polled as scheduled work (the lease is held only for one poll, not the wait).
    poll_interval_seconds: PositiveFloat = 60.0
    backfill_timeout_seconds: PositiveFloat = 4 * 3600.0
    # Also the bound of the dbt tests, waited for alongside the suite.
    quality_timeout_seconds: PositiveFloat = 3600.0
    dbt_tests: DbtTestSettings = Field(default_factory=DbtTestSettings)


class AlertmanagerSettings(ConfigModel):
    # Where the responder asks Alertmanager (API v2) which alerts of a truncated group
    # still fire before recovering it; the notifications' externalURL may not be
    # reachable from here.  Unset: a truncated group waits (and says so) until set.
    url: HttpUrl | None = None
    timeout_seconds: PositiveFloat = 5.0


class InboxSettings(ConfigModel):
    # Beyond either limit the webhook answers 503 (Alertmanager retries 5xx later), so
    # a storm waits in Alertmanager rather than growing the inbox without bound.
    max_depth: AtLeastOne = 20_000
    max_age_seconds: PositiveFloat = 600.0
    # /readyz answers 503 while the oldest waiting transition is older than this.
    ready_max_age_seconds: PositiveFloat = 300.0


class IncidentSettings(ConfigModel):
    # Alerts an incident keeps in full (labels, annotations); beyond them it keeps
    # counts, so its document stays the same size whatever the number of alerts.
    alert_sample: AtLeastOne = 100


class SchedulerSettings(ConfigModel):
    # How often due work (hourly notes, recovery probes, unfinished steps) is looked for.
    tick_seconds: PositiveFloat = 5.0


class ClientSettings(ConfigModel):
    """Start-up checks of the outside clients (docs/responder.md#client-checks)."""

    # Build and check Kubernetes, Airflow, runtime-config and Slack at start, so
    # the first action is not slower than the rest; a failed check is retried.
    check_at_start: bool = True
    check_timeout_seconds: PositiveFloat = 10.0
    retry_seconds: PositiveFloat = 30.0


class ActionOptions(ConfigModel):
    enabled: bool = True
    dry_run: bool = False
    # Defaults under every playbook step's params for this action.
    params: Mapping[str, Any] = Field(default_factory=dict)


OnTimeout = Literal["deny", "approve"]


class Approver(ConfigModel):
    """A person (or team) who may approve steps: the name is what the timeline records."""

    name: Name
    token: Secret = Field(None, description="prefer token_file")
    token_file: str | None = None

    @model_validator(mode="after")
    def _has_token(self) -> Approver:
        if not self.token and not self.token_file:
            raise ValueError("token: set token or token_file")
        return self

    def read_token(self) -> str | None:
        return read_secret(self.token, self.token_file, f"approver {self.name}'s token")


class ApprovalSettings(ConfigModel):
    # A step marked ``approval: required`` waits this long for a decision, then
    # ``on_timeout`` decides it (a step may override both).
    timeout_minutes: PositiveFloat = 30.0
    on_timeout: OnTimeout = "deny"
    # Who may decide through the API, the page or the CLI, each with a token; none
    # listed: the features token decides, recorded as "features-token".
    approvers: Items[Approver] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> ApprovalSettings:
        seen: set[str] = set()
        for index, approver in enumerate(self.approvers):
            if approver.name in seen:
                raise ValueError(f"approvers[{index}].name: duplicate approver {approver.name!r}")
            seen.add(approver.name)
        return self


class Step(ConfigModel):
    """``{action: NAME, params: {...}}`` runs an action; ``{revert: all|NAME}`` undoes them.

    ``approval: required`` makes the step wait for an operator's decision."""

    action: str | None = None
    revert: str | None = None
    params: Mapping[str, Any] = Field(default_factory=dict)
    approval: Literal["required", "none"] = "none"
    approval_timeout_minutes: PositiveFloat | None = None
    approval_on_timeout: OnTimeout | None = None

    @model_validator(mode="after")
    def _one_of_action_or_revert(self) -> Step:
        if (self.action is None) == (self.revert is None):
            raise ValueError("action: a step has exactly one of 'action' or 'revert'")
        if self.revert is not None and self.params:
            raise ValueError("params: a revert step takes no params")
        if self.approval != "required":
            for field in ("approval_timeout_minutes", "approval_on_timeout"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{field}: only with approval: required")
        return self


class Playbook(ConfigModel):
    name: str
    # Alertmanager-style matchers, all must match: 'alertname=~"ExternalData.*"', 'severity="page"'.
    matchers: Annotated[Items[str], check(_check_matchers)] = ()
    firing: Items[Step] = ()
    resolved: Items[Step] = ()

    @property
    def parsed_matchers(self) -> tuple[Matcher, ...]:
        return tuple(m for entry in self.matchers for m in parse_matchers(entry))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.parsed_matchers)


class ResponderConfig(ServiceSettings):
    listen: Listen = DEFAULT_LISTEN
    catalog_file: str = "config/external_providers.yml"
    catalog: Annotated[Catalog | None, NO_ENV] = None
    # Global dry run: record and show the plan, change nothing.
    dry_run: bool = False
    store: StoreSettings = Field(default_factory=StoreSettings)
    # Redis for the redis store and for reading external:last_success:* (both optional
    # in sqlite mode: without it last_success_before stays unknown).
    redis: RedisSettings | None = None
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    # Rate limit and gzip of this service's own HTTP (docs/responder.md#http-hardening).
    http: HttpSettings = Field(default_factory=HttpSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    playbooks: Items[Playbook] = ()
    # Steps marked ``approval: required`` (docs/responder.md#approval-gate).
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    # This responder's URL as operators reach it: links to incident pages in notes,
    # and the default --url of ``feedguard-responder approve|deny``.
    external_url: HttpUrl | None = None
    action_options: Mapping[str, ActionOptions] = Field(default_factory=dict)
    actions: ActionsSettings = Field(default_factory=ActionsSettings)
    clients: ClientSettings = Field(default_factory=ClientSettings)
    notes: NotesSettings = Field(default_factory=NotesSettings)
    # Workload logs and credential metadata on every incident (docs/evidence.md).
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    # OpenTelemetry traces over OTLP/HTTP, off by default (docs/responder.md#traces).
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _consistent(self) -> ResponderConfig:
        if self.store.backend == "redis" and self.redis is None:
            raise ValueError("store.backend: 'redis' needs the redis section")
        if self.store.backend == "redis" and self.redis is not None:
            timeout = self.redis.socket_timeout_seconds
            if self.executor.lease_seconds < 3 * timeout:
                raise ValueError(
                    f"executor.lease_seconds: must be at least 3 x redis.socket_timeout_seconds "
                    f"({3 * timeout:g}s): a renewal every third of the lease may take that long"
                )
        names: dict[str, int] = {}
        for index, playbook in enumerate(self.playbooks):
            if playbook.name in names:
                raise ValueError(
                    f"playbooks[{index}].name: duplicate playbook {playbook.name!r} "
                    f"(first at playbooks[{names[playbook.name]}])"
                )
            names[playbook.name] = index
        return self

    @property
    def providers(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("configuration was built without a catalog")
        return self.catalog

    def redis_password(self) -> str | None:
        if self.redis is None:
            return None
        return self.redis.read_password()

    def webhook_bearer_token(self) -> str | None:
        hook = self.webhook
        return read_secret(hook.bearer_token, hook.bearer_token_file, "webhook bearer token")

    def webhook_basic_password(self) -> str | None:
        hook = self.webhook
        return read_secret(hook.basic_password, hook.basic_password_file, "webhook basic password")

    def features_token(self) -> str | None:
        return read_secret(self.features.token, self.features.token_file, "feature-flag token")

    def approver_tokens(self) -> dict[str, str]:
        """{token: who} of everyone who may decide a step (see ApprovalSettings)."""
        found = {}
        for approver in self.approvals.approvers:
            token = approver.read_token()
            if token:
                found[token] = approver.name
        if not self.approvals.approvers:
            token = self.features_token()
            if token:
                found[token] = "features-token"
        return found

    def incident_url(self, incident_id: str) -> str | None:
        if self.external_url is None:
            return None
        return f"{str(self.external_url).rstrip('/')}/incidents/{quote(incident_id, safe='')}"

    def playbook_action_names(self) -> list[tuple[str, str]]:
        """(config path, action name) of every action a playbook or option names."""
        found = []
        for index, playbook in enumerate(self.playbooks):
            for phase in ("firing", "resolved"):
                for number, step in enumerate(getattr(playbook, phase)):
                    name = step.action or (step.revert if step.revert != "all" else None)
                    if name:
                        found.append((f"playbooks[{index}].{phase}[{number}]", name))
        for name in self.action_options:
            found.append((f"action_options.{name}", name))
        return found


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ResponderConfig:
    """Read, override from the environment and validate; ConfigError lists every problem.

    The catalog is checked even when the settings have errors, and every secret
    file and the note templates too, so one run of ``check-config`` reports all.
    """
    return load_service_config(ResponderConfig, path, environ, _startup_checks)


def _startup_checks(config: ResponderConfig) -> list[Callable[[], object]]:
    # Secrets named by *_file must be readable now, not at the first request;
    # note templates must compile and the Slack secret files be readable.
    actions = config.actions
    return [
        config.redis_password,
        config.webhook_bearer_token,
        config.webhook_basic_password,
        config.features_token,
        *(approver.read_token for approver in config.approvals.approvers),
        config.notes.check_startup,
        # What open_actions reads at start: a missing file was a traceback then.
        actions.airflow.read_password,
        actions.seatunnel.read_password,
        lambda: read_secret(
            actions.runtime_config.token, actions.runtime_config.token_file, "runtime-config token"
        ),
        lambda: read_secret(
            actions.kubernetes.token, actions.kubernetes.token_file, "Kubernetes token"
        ),
        config.tracing.read_headers,
    ]


__all__ = ["ConfigError", "ResponderConfig", "load_config"]
