"""The responder's one frozen configuration object, from YAML plus FEEDGUARD_* overrides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from feedguard.core.catalog import Catalog
from feedguard.core.http_hardening import HttpSettings
from feedguard.core.schema import (
    ConfigError,
    check_listen,
    check_non_negative,
    check_positive,
    field,
    read_secret,
)
from feedguard.core.service_config import load_service_config
from feedguard.core.settings import LogSettings, RedisSettings

from .actions.settings import ActionsSettings
from .evidence.settings import EvidenceSettings
from .matchers import Matcher, parse_matchers
from .notes.settings import NotesSettings

DEFAULT_LISTEN = "127.0.0.1:9817"
MiB = 1024 * 1024


def _check_matcher(value: Any) -> str | None:
    try:
        parse_matchers(str(value))
    except ValueError as exc:
        return str(exc)
    return None


def _check_at_least_one(value: Any) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value!r}"


@dataclass(frozen=True)
class StoreSettings:
    # sqlite: one replica, a file; redis: several replicas sharing ``redis``.
    backend: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = "var/responder.db"
    key_prefix: str = "feedguard:"
    # How long a delivered alert transition is remembered to suppress re-sends.
    dedupe_ttl_seconds: float = field(30 * 86400.0, check=check_positive)


@dataclass(frozen=True)
class WebhookSettings:
    # Alertmanager's http_config sends one Authorization header: Bearer or Basic.
    # With none of these set the webhook is open (logged loudly at start-up).
    bearer_token: str | None = field(None, doc="prefer FEEDGUARD_WEBHOOK_BEARER_TOKEN")
    bearer_token_file: str | None = None
    basic_username: str | None = None
    basic_password: str | None = field(None, doc="prefer FEEDGUARD_WEBHOOK_BASIC_PASSWORD")
    basic_password_file: str | None = None
    max_body_bytes: int = field(MiB, check=check_positive)
    # A sender slower than these is cut off (a byte every 10 s must not hold a handler):
    # the request line and headers from the connection's start or the last answer
    # (also how long an idle kept-alive connection stays open), then the whole body.
    header_timeout_seconds: float = field(10.0, check=check_positive)
    body_timeout_seconds: float = field(10.0, check=check_positive)


@dataclass(frozen=True)
class FeatureSettings:
    # Bearer token for /runtime-config/v1/features/*; unset = the API answers 503.
    token: str | None = field(None, doc="prefer FEEDGUARD_FEATURES_TOKEN")
    token_file: str | None = None


@dataclass(frozen=True)
class ExecutorSettings:
    timeout_seconds: float = field(30.0, check=check_positive)
    attempts: int = field(3, check=_check_at_least_one)
    backoff_initial_seconds: float = field(1.0, check=check_non_negative)
    backoff_factor: float = field(2.0, check=check_positive)
    circuit_failure_threshold: int = field(5, check=_check_at_least_one)
    circuit_reset_seconds: float = field(300.0, check=check_positive)
    # A replica running an incident's steps holds a lease this long (renewed per step).
    lease_seconds: float = field(120.0, check=check_positive)

    def __post_init__(self) -> None:
        worst = self.timeout_seconds * self.attempts + sum(
            self.backoff_initial_seconds * self.backoff_factor**n for n in range(self.attempts - 1)
        )
        if self.lease_seconds <= worst:
            raise ValueError(
                f"lease_seconds: must exceed the longest call with retries ({worst:g}s), "
                f"or another replica may take over a step still running"
            )


@dataclass(frozen=True)
class RecoverySettings:
    probes_required: int = field(2, check=_check_at_least_one)
    probe_interval_seconds: float = field(30.0, check=check_non_negative)
    user_agent: str = "feedguard-responder/0.1 (+recovery probe)"


@dataclass(frozen=True)
class InboxSettings:
    # Beyond either limit the webhook answers 503 (Alertmanager retries 5xx later), so
    # a storm waits in Alertmanager rather than growing the inbox without bound.
    max_depth: int = field(20_000, check=_check_at_least_one)
    max_age_seconds: float = field(600.0, check=check_positive)
    # /readyz answers 503 while the oldest waiting transition is older than this.
    ready_max_age_seconds: float = field(300.0, check=check_positive)


@dataclass(frozen=True)
class SchedulerSettings:
    # How often due work (hourly notes, recovery probes, unfinished steps) is looked for.
    tick_seconds: float = field(5.0, check=check_positive)


@dataclass(frozen=True)
class ActionOptions:
    enabled: bool = True
    dry_run: bool = False
    # Defaults under every playbook step's params for this action.
    params: Mapping[str, Any] = field(default_factory=dict, env=False)


@dataclass(frozen=True)
class Step:
    """``{action: NAME, params: {...}}`` runs an action; ``{revert: all|NAME}`` undoes them."""

    action: str | None = None
    revert: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.action is None) == (self.revert is None):
            raise ValueError("action: a step has exactly one of 'action' or 'revert'")
        if self.revert is not None and self.params:
            raise ValueError("params: a revert step takes no params")


def _check_matchers(values: Any) -> str | None:
    for index, value in enumerate(values):
        message = _check_matcher(value)
        if message:
            return f"item {index}: {message}"
    return None


@dataclass(frozen=True)
class Playbook:
    name: str
    # Alertmanager-style matchers, all must match: 'alertname=~"ExternalData.*"', 'severity="page"'.
    matchers: tuple[str, ...] = field((), check=lambda v: _check_matchers(v))
    firing: tuple[Step, ...] = ()
    resolved: tuple[Step, ...] = ()

    @property
    def parsed_matchers(self) -> tuple[Matcher, ...]:
        return tuple(m for entry in self.matchers for m in parse_matchers(entry))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.parsed_matchers)


@dataclass(frozen=True)
class ResponderConfig:
    listen: str = field(DEFAULT_LISTEN, check=check_listen)
    catalog_file: str = "config/external_providers.yml"
    catalog: Catalog | None = field(None, env=False)
    # Global dry run: record and show the plan, change nothing.
    dry_run: bool = False
    store: StoreSettings = StoreSettings()
    # Redis for the redis store and for reading external:last_success:* (both optional
    # in sqlite mode: without it last_success_before stays unknown).
    redis: RedisSettings | None = None
    webhook: WebhookSettings = WebhookSettings()
    features: FeatureSettings = FeatureSettings()
    # Rate limit and gzip of this service's own HTTP (docs/responder.md#http-hardening).
    http: HttpSettings = field(default_factory=HttpSettings)
    executor: ExecutorSettings = ExecutorSettings()
    recovery: RecoverySettings = RecoverySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    inbox: InboxSettings = InboxSettings()
    playbooks: tuple[Playbook, ...] = field((), env=False)
    action_options: Mapping[str, ActionOptions] = field(default_factory=dict, env=False)
    actions: ActionsSettings = field(default_factory=ActionsSettings)
    notes: NotesSettings = field(default_factory=NotesSettings)
    # Workload logs and credential metadata on every incident (docs/evidence.md).
    evidence: EvidenceSettings = field(default_factory=EvidenceSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def __post_init__(self) -> None:
        if self.store.backend == "redis" and self.redis is None:
            raise ValueError("store.backend: 'redis' needs the redis section")
        names: dict[str, int] = {}
        for index, playbook in enumerate(self.playbooks):
            if playbook.name in names:
                raise ValueError(
                    f"playbooks[{index}].name: duplicate playbook {playbook.name!r} "
                    f"(first at playbooks[{names[playbook.name]}])"
                )
            names[playbook.name] = index

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
        config.notes.validate,
        # What open_actions reads at start: a missing file was a traceback then.
        actions.airflow.read_password,
        actions.seatunnel.read_password,
        lambda: read_secret(
            actions.runtime_config.token, actions.runtime_config.token_file, "runtime-config token"
        ),
        lambda: read_secret(
            actions.kubernetes.token, actions.kubernetes.token_file, "Kubernetes token"
        ),
    ]


__all__ = ["ConfigError", "ResponderConfig", "load_config"]
