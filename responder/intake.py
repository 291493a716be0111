"""The inbox → incidents: routes the transitions the webhook recorded to their
provider's incident (opening one on the first firing alert) and applies them.

The incident changes themselves are ``transitions.apply_transitions``; this module
does the reading, leasing and writing around them.  Across replicas the
``inbox`` lease decides who applies the inbox; within a replica, a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import structlog

from feedguard.core.catalog import Provider
from feedguard.core.keys import (
    last_success_key,
    lineage_failure_key,
    probe_failing_since_key,
    provider_status_key,
)
from feedguard.core.log import get_logger
from feedguard.core.tracing import carrier, span_link

from . import incidents as inc
from .common import Common, Part
from .detection import detection_lag, probe_failed_at, stale_onset
from .lineage_failure import lineage_failure
from .routing import PlaybookMatcher, check_provider
from .store import Ack, LeaseLost, Ref, StoreUnavailable
from .store.base import ManyUpdater
from .transitions import Transition, apply_transitions

log = get_logger(__name__)

Doc = dict[str, Any]
Ignored = tuple[Doc, str]  # an inbox entry and why it is ignored
IGNORED_DOC: Ref = ("ignored", "recent")
INBOX_LEASE_SECONDS = 30.0
# Entries applied per store transaction.  Each transaction costs a few round trips
# whatever its size (they were ~60% of applying under load with batches of 100), and
# the batch's ack is part of it, so the size is no longer tied to TRANSITIONS_KEPT.
INBOX_BATCH = 500
IGNORED_KEPT = 500  # the newest ignored transitions kept for GET /api/v1/ignored


def _earliest(raws: Any) -> float | None:
    found = []
    for raw in raws:
        with contextlib.suppress(TypeError, ValueError):
            value = float(raw)
            if math.isfinite(value):
                found.append(value)
    return min(found) if found else None


class Intake(Part):
    def __init__(self, common: Common, redis: aioredis.Redis | None) -> None:
        super().__init__(common)
        self.catalog = self.config.providers
        self.redis = redis
        self.match_playbook = PlaybookMatcher(self.config.playbooks)
        self._lock = asyncio.Lock()

    async def process_inbox(self, serve: Callable[[str], Any] | None = None) -> list[str] | None:
        """Apply recorded transitions to incidents; returns the incidents that need a run,
        or None when another replica holds the inbox.

        The urgent lane (transitions that may open an incident, ``urgency.py``) is
        applied before each batch of the normal one, and its incidents are handed to
        ``serve`` at once: a new incident's first steps run while a storm of repeats
        still drains."""
        touched: list[str] = []
        async with self._lock:
            if not await self.store.acquire("inbox", self.owner, INBOX_LEASE_SECONDS):
                return None
            try:
                while True:
                    urgent = await self.store.inbox_peek(INBOX_BATCH, urgent=True)
                    if urgent:
                        for incident_id in await self._apply_batch(urgent, urgent=True):
                            if serve is not None:
                                serve(incident_id)
                            elif incident_id not in touched:
                                touched.append(incident_id)
                    entries = await self.store.inbox_peek(INBOX_BATCH)
                    if not entries and not urgent:
                        break
                    if entries:
                        for incident_id in await self._apply_batch(entries, urgent=False):
                            if incident_id not in touched:
                                touched.append(incident_id)
                    if not await self.store.acquire("inbox", self.owner, INBOX_LEASE_SECONDS):
                        raise LeaseLost("inbox lease taken by another replica")
            except LeaseLost as exc:
                # Ours expired (a pause longer than the lease) and another replica took
                # the inbox: it applies the rest; the batch in hand was not written.
                log.warning("inbox lease lost; another replica applies the inbox", error=str(exc))
            finally:
                with contextlib.suppress(StoreUnavailable):
                    await self.store.release("inbox", self.owner)
        return touched

    def _route(self, entries: list[Doc]) -> tuple[dict[str, list[Transition]], list[Ignored]]:
        """Inbox entries by provider (in order), and those no playbook or provider takes."""
        groups: dict[str, list[Transition]] = {}
        ignored: list[Ignored] = []
        for entry in entries:
            labels = entry["alert"]["labels"]
            provider, reason = check_provider(self.catalog, labels)
            if provider is None:
                ignored.append((entry, reason or "ignored"))
                continue
            playbook = None
            if entry["alert"]["status"] == "firing":
                playbook = self.match_playbook(labels)
                if playbook is None:
                    ignored.append((entry, "no playbook matches the alert"))
                    continue
            groups.setdefault(provider.name, []).append(Transition(entry, playbook))
        return groups, ignored

    async def _apply_batch(self, entries: list[Doc], *, urgent: bool) -> list[str]:
        """Apply a batch of one lane's entries in order: every incident it touches, the
        ignored ones and the batch's removal from the inbox in ONE store transaction
        (a few round trips whatever the batch holds, and never applied twice).
        Returns the incidents that need a run."""
        groups, ignored = self._route(entries)
        actives = await self.store.get_many("active", list(groups))
        updates: dict[str, tuple[Provider, list[Transition]]] = {}
        with contextlib.ExitStack() as stack:
            spans: dict[str, Any] = {}
            for name, items in groups.items():
                active = actives.get(name)
                incident_id: str | None = active.get("incident") if active else None
                if incident_id is None:
                    # Resolved alerts before the first firing one belong to no open
                    # incident; nor does a truncated group's count (it opens none).
                    while items and (why := _opens_nothing(items[0])) is not None:
                        ignored.append((items[0].entry, why))
                        items = items[1:]
                    if not items:
                        continue
                provider = self.catalog.require(name)
                span = stack.enter_context(self._update_span(provider, items))
                if incident_id is None:
                    with self.tracing.current(span):  # its "incident opened" is in the trace
                        incident_id = await self._open(provider, items[0].entry)
                span.set_attribute("feedguard.incident_id", incident_id)
                spans[incident_id] = span
                updates[incident_id] = (provider, items)
            change = self._change(updates, spans, self._ignored_records(ignored))
            refs: list[Ref] = [("incident", incident_id) for incident_id in updates]
            # Only a resolved alert can turn out not to be part of its incident.
            resolved = any(t.playbook is None for _, items in updates.values() for t in items)
            if ignored or resolved:
                refs.append(IGNORED_DOC)
            ack = Ack(len(entries), urgent, lease=("inbox", self.owner))
            results = await self.store.update_many(refs, change, ack=ack)
        touched = []
        for incident_id, (provider, items) in updates.items():
            accepted, needs_service = results[incident_id]
            self._applied(incident_id, provider, items, accepted)
            ignored += _outside(incident_id, items, accepted)
            # A repeat of what the incident already knows needs no run (the tick still comes).
            if needs_service:
                touched.append(incident_id)
        self._log_ignored(ignored)
        return touched

    def _update_span(self, provider: Provider, items: list[Transition]) -> Any:
        """One span per incident update, in the trace of the group's first notification
        (linked to the others' when a batch holds several)."""
        traces = [t.entry["trace"] for t in items if t.entry.get("trace")]
        links = [link for found in traces[1:] if (link := span_link(found)) is not None]
        return self.tracing.detached(
            "incident update",
            traces[0] if traces else None,
            links=links,
            attributes={"feedguard.provider": provider.name, "feedguard.transitions": len(items)},
        )

    def _change(
        self,
        updates: dict[str, tuple[Provider, list[Transition]]],
        spans: dict[str, Any],
        ignored: list[Doc],
    ) -> ManyUpdater[dict[str, tuple[list[bool], bool]]]:
        """The batch's store change: each incident's transitions applied inside its own
        span (its timeline entries carry that trace), the ignored ones kept."""
        now = self.clock()
        needed = self.config.recovery.probes_required
        sample = self.config.incidents.alert_sample

        def change(
            docs: dict[Ref, Doc | None],
        ) -> tuple[dict[Ref, Doc], dict[str, tuple[list[bool], bool]]]:
            changed: dict[Ref, Doc] = {}
            results: dict[str, tuple[list[bool], bool]] = {}
            for incident_id, (provider, items) in updates.items():
                doc = docs[("incident", incident_id)]
                if doc is None:
                    # Firing ones still count as applied, as they always have.
                    results[incident_id] = ([t.playbook is not None for t in items], False)
                    continue
                with self.tracing.current(spans[incident_id]):
                    trace = carrier()
                    applied = apply_transitions(
                        doc,
                        items,
                        now,
                        health_probe=provider.health_probe is not None,
                        probes_required=needed,
                        alert_sample=sample,
                    )
                if applied.changed:
                    if trace:
                        # The steps this update planned run in its trace (runner.py).
                        doc["trace"] = trace
                    changed[("incident", incident_id)] = doc
                results[incident_id] = (applied.accepted, applied.needs_service)
            kept_records = ignored + self._ignored_records(
                [
                    found
                    for incident_id, (_, items) in updates.items()
                    for found in _outside(incident_id, items, results[incident_id][0])
                ]
            )
            if kept_records:
                kept = docs[IGNORED_DOC]
                for record in kept_records:
                    kept = add_ignored(kept, record)
                assert kept is not None
                changed[IGNORED_DOC] = kept
            return changed, results

        return change

    def _applied(
        self, incident_id: str, provider: Provider, items: list[Transition], accepted: list[bool]
    ) -> None:
        """Log and count an incident's applied transitions."""
        count = 0
        with structlog.contextvars.bound_contextvars(incident_id=incident_id):
            for (entry, playbook), known in zip(items, accepted, strict=True):
                if not known or entry.get("truncation_only"):
                    continue
                count += 1
                log.debug(
                    "alert transition applied",
                    fingerprint=entry["alert"]["fingerprint"],
                    status=entry["alert"]["status"],
                    group_key=entry.get("group_key"),
                    playbook=playbook.name if playbook else None,
                )
            self.metrics.transitions.labels("incident").inc(count)
            log.info("alert transitions applied", provider=provider.name, transitions=count)

    async def _open(self, provider: Provider, entry: Doc) -> str:
        opened_at = self.clock()
        incident_id = inc.incident_id(provider.name, entry["received_at"], entry["key"])
        last_successes, status, failing_since, lineage = await self._redis_facts(provider)
        before = _earliest(last_successes.values())
        detection = detection_lag(
            entry["received_at"],
            stale_onset(last_successes, provider.freshness_sla_seconds),
            probe_failed_at(status, failing_since),
        )
        # The provider's recent OpenLineage FAIL/ABORT (kept by the exporter), if any.
        failure = lineage_failure(lineage, opened_at)

        def create(doc: Doc | None) -> tuple[Doc | None, bool]:
            if doc is not None:
                return None, False
            created = inc.new_incident(incident_id, provider.name, opened_at, before, failure)
            created["detection"] = detection
            return created, True

        if await self.store.update("incident", incident_id, create) and detection is not None:
            # Once per incident: only the write that created it observes.
            self.metrics.detection_lag.labels(provider.name).observe(detection["seconds"])
        await self.store.update(
            "active", provider.name, lambda doc: ({"incident": incident_id, "live": True}, None)
        )
        log.info(
            "incident opened",
            incident_id=incident_id,
            provider=provider.name,
            detection_lag_seconds=detection["seconds"] if detection else None,
        )
        return incident_id

    async def _redis_facts(self, provider: Provider) -> tuple[dict[str, Any], Any, Any, Any]:
        """({dataset: raw last success}, raw provider status, raw probe failing-since,
        raw lineage failure), as Redis has them now: one MGET."""
        if self.redis is None:
            return {}, None, None, None
        keys = [last_success_key(provider.name, d) for d in provider.datasets]
        keys += [
            provider_status_key(provider.name),
            probe_failing_since_key(provider.name),
            lineage_failure_key(provider.name),
        ]
        try:
            values = await self.redis.mget(keys)
        except Exception as exc:  # optional data: an outage here must not stop the incident
            log.warning("cannot read last successes and provider status", error=str(exc))
            return {}, None, None, None
        *successes, status, failing_since, lineage = values
        return dict(zip(provider.datasets, successes, strict=True)), status, failing_since, lineage

    def _ignored_records(self, ignored: list[Ignored]) -> list[Doc]:
        """The ignored transitions as kept for GET /api/v1/ignored (bounded copies)."""
        return [
            {
                "key": entry["key"],
                "at": entry["received_at"],
                "reason": reason,
                "alert": bounded_alert(entry["alert"]),
                "group_key": _clip(entry.get("group_key")),
            }
            for entry, reason in ignored
        ]

    def _log_ignored(self, ignored: list[Ignored]) -> None:
        """One line and one count each (the batch's transaction kept them)."""
        for entry, reason in ignored:
            alert = entry["alert"]
            log.info(
                "alert transition ignored",
                reason=reason,
                alertname=alert["labels"].get("alertname"),
                fingerprint=alert["fingerprint"],
            )
        if ignored:
            self.metrics.transitions.labels("ignored").inc(len(ignored))


def _opens_nothing(transition: Transition) -> str | None:
    """Why a transition cannot open an incident (None: it can): a resolved alert, or a
    truncated group's count (``webhook.truncation_marker``)."""
    if transition.entry.get("truncation_only"):
        return "truncation count without an open incident"
    if transition.playbook is None:
        return "resolved alert without an open incident"
    return None


def _outside(incident_id: str, items: list[Transition], accepted: list[bool]) -> list[Ignored]:
    """The transitions an incident did not take (a resolved alert it does not know)."""
    return [
        (entry, f"alert is not part of incident {incident_id}")
        for (entry, _), known in zip(items, accepted, strict=True)
        if not known
    ]


def add_ignored(doc: Doc | None, record: Doc) -> Doc:
    """Keep an ignored transition (once) among the newest ``IGNORED_KEPT``."""
    doc = doc or {"entries": []}
    if all(e["key"] != record["key"] for e in doc["entries"]):
        doc["entries"].append(record)
        del doc["entries"][:-IGNORED_KEPT]
    return doc


# Characters kept per string of an ignored alert: /api/v1/ignored stays small whatever
# was sent (500 entries of 1 MiB bodies would make a 500 MiB document).
IGNORED_TEXT = 256
IGNORED_LABELS = 32


def _clip(value: Any) -> Any:
    return value[:IGNORED_TEXT] if isinstance(value, str) else value


def bounded_alert(alert: Doc) -> Doc:
    """An ignored alert as kept: status, fingerprint, startsAt and up to 32 labels, clipped."""
    labels = list(alert.get("labels", {}).items())[:IGNORED_LABELS]
    return {
        "status": alert.get("status"),
        "fingerprint": _clip(alert.get("fingerprint")),
        "startsAt": alert.get("startsAt"),
        "labels": {_clip(name): _clip(value) for name, value in labels},
    }
