"""The contract between the responder core and the things it drives.

The core (intake, ledger, playbooks, executor, scheduler) owns *when* and *how
often*; an ``Action`` owns *what* one runbook step does to one external system,
and a ``Notifier`` owns how a situation note is rendered and delivered.  Neither
an action nor a notifier touches the state store: the core records what they
return.

Exactly-once and reference counting are the core's job:

- Before ``apply`` on a target whose ``resource`` is not None, the core claims
  the resource for the incident.  Only the first incident holding a resource
  calls ``apply``; its ``Outcome.previous`` is kept as the resource's original
  value.  Later incidents only add their claim.
- On recovery the core releases the incident's claims in reverse order; the
  last holder's release calls ``revert(ctx, target, original_previous)``.
- ``apply`` and ``revert`` must be idempotent: the core may call them again
  after a crash between the call and the record, possibly in another replica.
- Intent before effect: an ``apply`` that learns the value it replaces by reading
  the target first writes it down with ``ctx.intents.record(target, previous,
  new)`` *before* it changes the target (or keeps it in the target itself, as
  the throttle's ConfigMap annotation does).  The core keeps the intent on the
  incident in the store, so a replica taking over after a crash finds it with
  ``ctx.intents.get(target)`` and, meeting the target already in the new state,
  reports the recorded ``previous`` instead of reading its own change as it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from feedguard.core.catalog import Provider

JSON = Any  # a JSON-serialisable value: what the ledger can store

Phase = Literal["firing", "recovery"]


@dataclass(frozen=True)
class AlertView:
    fingerprint: str
    alertname: str
    status: Literal["firing", "resolved"]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None


@dataclass(frozen=True)
class ActionRecord:
    """One executed (or planned, in dry run) step on one target, as the ledger keeps it."""

    action: str
    target: str  # Target.description
    resource: str | None
    phase: Phase
    result: Literal["success", "failure", "dry_run", "skipped"]
    at: float
    previous: JSON = None
    detail: Mapping[str, JSON] = field(default_factory=dict)
    error: str | None = None
    reverts: str | None = None  # set on an undo: the key of the record it undoes


@dataclass(frozen=True)
class IncidentView:
    """A read-only snapshot of an incident handed to actions and notifiers."""

    id: str
    provider: str
    state: str  # open, stabilising, stabilised, recovering, verifying, resolved, needs_attention
    opened_at: float
    resolved_at: float | None
    recovered_at: float | None
    # Earliest last success among the provider's datasets when the incident
    # opened (from Redis), the start of the backfill window; None when unknown.
    last_success_before: float | None
    alerts: Sequence[AlertView]
    actions: Sequence[ActionRecord]
    timeline: Sequence[Mapping[str, JSON]]
    # What notifiers asked the core to keep (e.g. {"slack_ts": "...", "channel": "..."}).
    notes: Mapping[str, JSON]
    # Evidence snapshots (runbook 4: workload logs, credential metadata), oldest first.
    evidence: Sequence[Mapping[str, JSON]] = ()
    # Alerts Alertmanager left out of the notifications (truncatedAlerts) while the
    # picture is incomplete; 0 once complete or never truncated.
    truncated_alerts: int = 0
    # Every alert counted ({total, firing, resolved, sampled}); ``alerts`` holds only the
    # sample kept in full (incidents.alert_sample).  Empty: count ``alerts``.
    alert_counts: Mapping[str, int] = field(default_factory=dict)
    # Detection lag (runbook 7): seconds, source, onset_at, first_notification_at;
    # None when neither a stale dataset nor a failing probe's start was known.
    detection: Mapping[str, JSON] | None = None
    # The provider's OpenLineage FAIL/ABORT of the last day when the incident opened:
    # {"job", "event_type", "message", "at"}; None when there was none.
    lineage_failure: Mapping[str, JSON] | None = None
    # Verified recovery (runbook 5.3-5.4): the backfill run followed and the quality
    # suite waited for, with stage, outcome and reason; None when nothing is verified.
    verification: Mapping[str, JSON] | None = None
    # Steps marked ``approval: required``: id, what, phase, status (awaiting_approval,
    # pending, done, denied, ...), requested_at, deadline_at, on_timeout, decision
    # ({decision, by, via, at} once decided).
    approvals: Sequence[Mapping[str, JSON]] = ()


@dataclass(frozen=True)
class Target:
    """One thing a step changes, e.g. one DAG, one ConfigMap key, one feature flag."""

    description: str  # "pause DAG external_data_ingest"
    # Reference-counting key shared across incidents, e.g. "airflow:dag:external_data_ingest",
    # "k8s:configmap:aurum-dev/aurum-api-config:AURUM_API_RATE_LIMIT_RPS",
    # "runtime-config:feature:external_read_cache"; None for per-incident effects
    # such as triggering a run.
    resource: str | None
    params: Mapping[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class Intent:
    """What an action was about to do to a target: the value it replaces and the new one."""

    previous: JSON
    new: JSON
    at: float
    detail: Mapping[str, JSON] = field(default_factory=dict)  # e.g. runs in flight


def intent_key(target: Target) -> str:
    return target.resource if target.resource is not None else target.description


class Intents:
    """The incident's intents, one per target (``intent_key``).  Kept in this object
    only, as an action used without a responder core (action-level tests) needs; the
    core passes ``intents.LedgerIntents``, whose ``_save`` writes them to the store."""

    def __init__(self, now: float = 0.0, intents: Mapping[str, Intent] | None = None) -> None:
        self._now = now
        self._intents: dict[str, Intent] = dict(intents or {})

    def get(self, target: Target) -> Intent | None:
        return self._intents.get(intent_key(target))

    async def record(
        self,
        target: Target,
        previous: JSON,
        new: JSON,
        detail: Mapping[str, JSON] | None = None,
    ) -> None:
        """Durable when it returns (with the core's ledger): only then may the action
        change the target."""
        key = intent_key(target)
        intent = Intent(previous, new, self._now, dict(detail or {}))
        await self._save(key, target, intent)
        self._intents[key] = intent

    async def _save(self, key: str, target: Target, intent: Intent) -> None:
        """Make the intent durable (nothing to do in memory)."""


@dataclass(frozen=True)
class StepContext:
    incident: IncidentView
    provider: Provider
    params: Mapping[str, JSON]  # the playbook step's parameters over the action's defaults
    now: float
    dry_run: bool
    # Where ``apply`` records its intent before changing a target (see the module doc).
    intents: Intents = field(default_factory=Intents)


@dataclass(frozen=True)
class Outcome:
    previous: JSON = None  # the value replaced, handed back to revert
    detail: Mapping[str, JSON] = field(default_factory=dict)  # e.g. captured run ids
    changed: bool = True  # False when the target already was in the wanted state
    # A revert that kept the current value because someone else changed it
    # since (or it was so before feedguard): why, in a few words.
    left_alone: str | None = None


class ActionError(Exception):
    """A step failed.  ``retryable`` False stops retries (e.g. 403, 404, 422).
    ``retry_after``: the seconds the system asked to wait before the next attempt
    (``Retry-After`` of a 429 or 503); the executor waits at least that, up to
    ``executor.max_retry_after_seconds``."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class Action(Protocol):
    name: ClassVar[str]  # as written in playbooks, e.g. "throttle_api"
    reversible: ClassVar[bool]  # True: the core reverts it on recovery
    circuit: ClassVar[str]  # circuit-breaker key (one per external system), e.g. "kubernetes"

    def targets(self, ctx: StepContext) -> Sequence[Target]:
        """What this step would change for this incident (no I/O; [] = nothing to do)."""
        ...

    async def apply(self, ctx: StepContext, target: Target) -> Outcome: ...

    async def revert(self, ctx: StepContext, target: Target, previous: JSON) -> Outcome: ...


# "verification": the reply in the resolution note's thread once the backfill and the
# quality suite were followed to an outcome; "approval": the reply asking for a decision
# on a step marked approval: required.
NoteKind = Literal["initial", "update", "resolution", "verification", "approval"]


class NoteProgress(Protocol):
    """What the notifier tells the core while one note is being delivered, so a replica
    taking over after a crash knows whether anything of it can have been posted."""

    async def waiting(self) -> None:
        """Slack refused the last request (429, ``Retry-After``): nothing is posted yet."""
        ...

    async def sending(self) -> None:
        """A request for this note is about to go out again."""
        ...


@dataclass(frozen=True)
class NoteRequest:
    kind: NoteKind
    # 0 for initial, resolution, verification; 1, 2, ... for the hourly updates; the
    # request's number for approval notes (one per step put in awaiting_approval).
    slot: int
    incident: IncidentView
    now: float
    next_update_at: float | None  # None on the resolution, verification and approval notes
    progress: NoteProgress | None = None
    # The incident page as operators reach it (config external_url); None when unset.
    incident_url: str | None = None


class CannotConfirm(Exception):
    """The notifier cannot tell whether an earlier attempt at a note reached its
    destination (an incoming webhook cannot read the channel back)."""


class Notifier(Protocol):
    async def post(self, request: NoteRequest) -> Mapping[str, JSON]:
        """Render and deliver one note; return data the core merges into incident.notes.

        Raises on final failure (after its own retries); the core records it on
        the incident.  Never called twice for the same (incident, kind, slot) by a
        live replica; after a replica died mid-post, only once ``find`` said no.
        """
        ...

    async def find(self, request: NoteRequest, since: float) -> Mapping[str, JSON] | None:
        """Look for this note, posted at or after ``since`` (epoch seconds) by a replica
        that stopped before recording it: what ``post`` would have returned when it is
        there, None when it is not.  Raises CannotConfirm when it cannot look, and
        like ``post`` when looking failed."""
        ...
