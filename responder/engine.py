"""The scheduler: turns recorded transitions into incidents and runs their steps.

``Engine.tick()`` performs all due work once: apply the inbox, run pending
steps (also those left by a restart), probe recovering providers, post due
notes.  Production calls it every ``scheduler.tick_seconds``; the webhook
also ``kick()``s it so a new alert is acted on at once.  Tests advance the
injected clock and call ``await engine.tick()`` then ``await engine.settle()``.

Across replicas, leases in the store decide who applies the inbox and who
runs an incident; within a replica, asyncio locks do.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import structlog

from feedguard.core.catalog import Catalog, Provider
from feedguard.core.keys import last_success_key
from feedguard.core.log import get_logger
from feedguard.core.probes import probe

from . import incidents as inc
from .circuit import Breakers
from .config import Playbook, ResponderConfig
from .executor import Executor, LeaseLost
from .metrics import Metrics
from .plugins import Action, NoteKind, NoteRequest, Notifier
from .store import Store, StoreUnavailable

log = get_logger(__name__)

Doc = dict[str, Any]
INBOX_LEASE_SECONDS = 30.0
INBOX_BATCH = 100
# A kick waits this long to gather a burst of notifications into one pass over the inbox.
KICK_COALESCE_SECONDS = 0.02
# Under a stream of notifications, passes start at most this often: a pass costs ~20
# store round trips whatever its size, so fewer, larger passes are far cheaper per
# notification (the runbook acts on 15-minute thresholds; 0.1 s is immaterial).
KICK_INTERVAL_SECONDS = 0.1
IGNORED_KEPT = 500  # the newest ignored transitions kept for GET /api/v1/ignored
KICK_RETRIES = 10  # another replica holds the inbox: look again this often, then wait for a tick


class Engine:
    def __init__(
        self,
        config: ResponderConfig,
        store: Store,
        actions: Mapping[str, Action],
        notifier: Notifier | None,
        metrics: Metrics,
        clock: Callable[[], float],
        http: aiohttp.ClientSession | None = None,
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.config = config
        self.catalog: Catalog = config.providers
        self.store = store
        self.actions = actions
        self.notifier = notifier
        self.metrics = metrics
        self.clock = clock
        self.http = http
        self.redis = redis
        self.owner = uuid.uuid4().hex
        self.breakers = Breakers(
            config.executor.circuit_failure_threshold,
            config.executor.circuit_reset_seconds,
            clock,
            metrics,
        )
        self.executor = Executor(config, store, actions, self.breakers, metrics, clock)
        self._inbox_lock = asyncio.Lock()
        self._incident_locks: dict[str, asyncio.Lock] = {}
        self._note_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._kick_pending = False
        self._kick_task: asyncio.Task[None] | None = None
        self._last_pass = -math.inf  # loop time the last kicked pass started
        self._stopping = asyncio.Event()
        # Matchers parsed once (Playbook.parsed_matchers parses on every access).
        self._matchers = [(p, p.parsed_matchers) for p in config.playbooks]

    # --- background task bookkeeping -------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        # A fresh context: work started by one webhook request must not log its groupKey.
        task = asyncio.create_task(coro, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settle(self, limit_seconds: float = 30.0) -> None:
        """Wait until background work started so far (kicks, runs, notes) has finished."""
        async with asyncio.timeout(limit_seconds):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Cancel background work; never wait longer than ``grace_seconds``."""
        self.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            if pending:
                log.warning("background tasks still running at shutdown", tasks=len(pending))

    def kick(self) -> None:
        """Apply new inbox entries and run their incidents soon (called by the webhook)."""
        self._kick_pending = True
        if self._kick_task is None or self._kick_task.done():
            self._kick_task = self._spawn(self._kicked())

    async def _kicked(self) -> None:
        loop = asyncio.get_running_loop()
        while self._kick_pending:
            since = loop.time() - self._last_pass
            await asyncio.sleep(max(KICK_COALESCE_SECONDS, KICK_INTERVAL_SECONDS - since))
            self._last_pass = loop.time()
            self._kick_pending = False
            try:
                touched = await self.process_inbox()
                for _ in range(KICK_RETRIES):
                    if touched is not None:
                        break
                    # Another replica is applying the inbox; it may have finished
                    # before our entries arrived.
                    await asyncio.sleep(KICK_COALESCE_SECONDS * 5)
                    touched = await self.process_inbox()
            except StoreUnavailable as exc:
                log.warning("store unavailable while applying the inbox", error=str(exc))
                return
            for incident_id in touched or ():
                self._spawn(self.service_incident(incident_id))

    async def run_forever(self) -> None:
        """Tick every ``scheduler.tick_seconds`` until ``stop()``."""
        while not self._stopping.is_set():
            try:
                await self.tick()
            except StoreUnavailable as exc:
                log.warning("store unavailable during tick", error=str(exc))
            except Exception:
                log.exception("tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.scheduler.tick_seconds)

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> None:
        """Perform all due work once (inbox, pending steps, recovery probes, notes)."""
        await self.process_inbox()
        live = await self.store.list("incident", live_only=True)
        results = await asyncio.gather(
            *(self.service_incident(doc["id"]) for doc in live), return_exceptions=True
        )
        for doc, result in zip(live, results, strict=True):
            if isinstance(result, Exception):
                log.error("incident run failed", incident_id=doc["id"], exc_info=result)

    # --- the inbox ----------------------------------------------------------------

    async def process_inbox(self) -> list[str] | None:
        """Apply recorded transitions to incidents; returns the incidents that need a run,
        or None when another replica holds the inbox."""
        touched: list[str] = []
        async with self._inbox_lock:
            if not await self.store.acquire("inbox", self.owner, INBOX_LEASE_SECONDS):
                return None
            try:
                while True:
                    entries = await self.store.inbox_peek(INBOX_BATCH)
                    if not entries:
                        break
                    for incident_id in await self._apply_batch(entries):
                        if incident_id not in touched:
                            touched.append(incident_id)
                    await self.store.inbox_ack(len(entries))
                    await self.store.acquire("inbox", self.owner, INBOX_LEASE_SECONDS)
            finally:
                with contextlib.suppress(StoreUnavailable):
                    await self.store.release("inbox", self.owner)
        return touched

    def match_playbook(self, labels: Mapping[str, str]) -> Playbook | None:
        for playbook, matchers in self._matchers:
            if all(m.matches(labels) for m in matchers):
                return playbook
        return None

    def check_provider(self, labels: Mapping[str, str]) -> tuple[Provider | None, str | None]:
        name = labels.get("provider")
        if not name:
            return None, "alert has no provider label"
        provider = self.catalog.get(name)
        if provider is None:
            return None, f"provider {name!r} is not in the catalog"
        if not provider.enabled:
            return None, f"provider {name!r} is disabled in the catalog"
        return provider, None

    async def _ignore(self, entry: Doc, reason: str) -> None:
        alert = entry["alert"]
        log.info(
            "alert transition ignored",
            reason=reason,
            alertname=alert["labels"].get("alertname"),
            fingerprint=alert["fingerprint"],
        )
        self.metrics.transitions.labels("ignored").inc()
        record = {
            "key": entry["key"],
            "at": entry["received_at"],
            "reason": reason,
            "alert": alert,
            "group_key": entry.get("group_key"),
        }

        def append(doc: Doc | None) -> tuple[Doc, None]:
            doc = doc or {"entries": []}
            if all(e["key"] != record["key"] for e in doc["entries"]):
                doc["entries"].append(record)
                del doc["entries"][:-IGNORED_KEPT]
            return doc, None

        await self.store.update("ignored", "recent", append)

    async def _apply_batch(self, entries: list[Doc]) -> list[str]:
        """Apply inbox entries in order; one ledger write per incident and batch."""
        groups: dict[str, list[tuple[Doc, Playbook | None]]] = {}
        for entry in entries:
            labels = entry["alert"]["labels"]
            provider, reason = self.check_provider(labels)
            if provider is None:
                await self._ignore(entry, reason or "ignored")
                continue
            playbook = None
            if entry["alert"]["status"] == "firing":
                playbook = self.match_playbook(labels)
                if playbook is None:
                    await self._ignore(entry, "no playbook matches the alert")
                    continue
            groups.setdefault(provider.name, []).append((entry, playbook))
        touched = []
        for name, items in groups.items():
            provider = self.catalog.require(name)
            incident_id = await self._apply_group(provider, items)
            if incident_id is not None:
                touched.append(incident_id)
        return touched

    async def _apply_group(
        self, provider: Provider, items: list[tuple[Doc, Playbook | None]]
    ) -> str | None:
        active = await self.store.get("active", provider.name)
        incident_id: str | None = active.get("incident") if active else None
        if incident_id is None:
            # Resolved alerts before the first firing one belong to no open incident.
            while items and items[0][1] is None:
                await self._ignore(items[0][0], "resolved alert without an open incident")
                items = items[1:]
            if not items:
                return None
            incident_id = await self._open(provider, items[0][0])
        now = self._now()
        needed = self.config.recovery.probes_required
        changers = [
            _firing(entry, playbook, now)
            if playbook is not None
            else _resolved(entry, now, provider, needed)
            for entry, playbook in items
        ]

        def change(doc: Doc | None) -> tuple[Doc | None, tuple[list[Any], bool]]:
            if doc is None:
                return None, ([False] * len(changers), False)
            before = (doc["state"], len(inc.pending_work(doc)))
            changed = False
            results: list[Any] = []
            # One set for the batch: a scan of the kept list per transition was ~15% of
            # the scheduler's time under load.
            applied = set(doc["transitions"])
            for changer in changers:
                new, result = changer(doc, applied)
                if new is not None:
                    doc, changed = new, True
                results.append(result)
            # Steps to run, a state to act on (recovering), or a new incident's first notes.
            needs_service = (
                (doc["state"], len(inc.pending_work(doc))) != before
                or bool(inc.pending_work(doc))
                or doc["state"] in (inc.OPEN, inc.RECOVERING)
            )
            return (doc if changed else None), (results, needs_service)

        with structlog.contextvars.bound_contextvars(incident_id=incident_id):
            results, needs_service = await self.store.update("incident", incident_id, change)
            applied = 0
            for (entry, playbook), result in zip(items, results, strict=True):
                if playbook is None and result is False:
                    await self._ignore(entry, f"alert is not part of incident {incident_id}")
                    continue
                applied += 1
                log.debug(
                    "alert transition applied",
                    fingerprint=entry["alert"]["fingerprint"],
                    status=entry["alert"]["status"],
                    group_key=entry.get("group_key"),
                    playbook=playbook.name if playbook else None,
                )
            self.metrics.transitions.labels("incident").inc(applied)
            log.info("alert transitions applied", provider=provider.name, transitions=applied)
        # A repeat of what the incident already knows needs no run (the tick still comes).
        return incident_id if needs_service else None

    def _now(self) -> float:
        return self.clock()

    async def _open(self, provider: Provider, entry: Doc) -> str:
        opened_at = self._now()
        incident_id = inc.incident_id(provider.name, entry["received_at"], entry["key"])
        before = await self._last_success_before(provider)

        def create(doc: Doc | None) -> tuple[Doc | None, None]:
            if doc is not None:
                return None, None
            return inc.new_incident(incident_id, provider.name, opened_at, before), None

        await self.store.update("incident", incident_id, create)
        await self.store.update(
            "active", provider.name, lambda doc: ({"incident": incident_id, "live": True}, None)
        )
        log.info("incident opened", incident_id=incident_id, provider=provider.name)
        return incident_id

    async def _last_success_before(self, provider: Provider) -> float | None:
        if self.redis is None or not provider.datasets:
            return None
        keys = [last_success_key(provider.name, d) for d in provider.datasets]
        try:
            values = await self.redis.mget(keys)
        except Exception as exc:  # optional data: an outage here must not stop the incident
            log.warning("cannot read last successes", error=str(exc))
            return None
        found = []
        for raw in values:
            with contextlib.suppress(TypeError, ValueError):
                value = float(raw)  # type: ignore[arg-type]  # None raises TypeError, suppressed
                if math.isfinite(value):
                    found.append(value)
        return min(found) if found else None

    # --- running an incident ------------------------------------------------------------

    async def service_incident(self, incident_id: str) -> None:
        lock = self._incident_locks.setdefault(incident_id, asyncio.Lock())
        if lock.locked():
            return  # already being served by this replica
        async with lock:
            with structlog.contextvars.bound_contextvars(incident_id=incident_id):
                try:
                    await self._service(incident_id)
                except LeaseLost:
                    log.warning("lease lost: another replica took over the incident")
                except StoreUnavailable as exc:
                    log.warning("store unavailable while running the incident", error=str(exc))
        if not lock.locked() and self._incident_locks.get(incident_id) is lock:
            del self._incident_locks[incident_id]  # one lock per incident being served

    async def _service(self, incident_id: str) -> None:
        lease = f"incident:{incident_id}"
        ttl = self.config.executor.lease_seconds
        if not await self.store.acquire(lease, self.owner, ttl):
            return  # another replica runs it

        async def renew() -> None:
            if not await self.store.acquire(lease, self.owner, ttl):
                raise LeaseLost(incident_id)

        try:
            doc = await self.store.get("incident", incident_id)
            if doc is None:
                return
            self.schedule_notes(doc)
            doc = await self._run_pending(incident_id, renew, doc)
            if (
                doc is not None
                and doc["state"] == inc.RECOVERING
                and await self._check_recovery(doc)
            ):
                doc = await self._run_pending(incident_id, renew, None)
            if doc is not None and doc["state"] == inc.RESOLVED:
                self.schedule_notes(doc)  # the resolution note
        finally:
            with contextlib.suppress(StoreUnavailable):
                await self.store.release(lease, self.owner)

    async def _run_pending(
        self, incident_id: str, renew: Callable[[], Any], doc: Doc | None
    ) -> Doc | None:
        """Run pending steps in order; returns the incident as last read."""
        while True:
            if doc is None:
                doc = await self.store.get("incident", incident_id)
                if doc is None:
                    return None
            pending = inc.pending_work(doc)
            if not pending:
                if inc.settled_state(doc) != doc["state"]:
                    settled: Doc | None = await self.store.update(
                        "incident", incident_id, self._settle_state
                    )
                    return settled
                return doc
            item = pending[0]
            provider = self.catalog.get(doc["provider"])
            if item["phase"] == "firing" and doc["state"] in (inc.OPEN, inc.STABILISED):
                doc = await self.store.update(
                    "incident",
                    incident_id,
                    _set_state(inc.STABILISING, self._now(), "running firing steps"),
                )
            assert doc is not None
            if provider is None:
                ok = False  # the provider left the catalog since the incident opened
            else:
                ok = await self.executor.run_item(doc, item, provider, renew)
            await self.store.update(
                "incident", incident_id, _finish_item(item["id"], ok, self._now())
            )
            doc = None
            await renew()

    def _settle_state(self, doc: Doc | None) -> tuple[Doc | None, Doc | None]:
        if doc is None:
            return None, None
        state = inc.settled_state(doc)
        if state == doc["state"]:
            return None, doc
        now = self._now()
        doc["state"] = state
        inc.add_event(doc, now, f"state {state}")
        if state == inc.RESOLVED:
            doc["resolved_at"] = now
            doc["live"] = self.notifier is not None and "resolution:0" not in doc["note_slots"]
        return doc, doc

    async def _check_recovery(self, doc: Doc) -> bool:
        """Probe if due; True when the resolved steps were enqueued."""
        recovery = doc.get("recovery") or {}
        if recovery.get("steps_enqueued"):
            return False
        now = self._now()
        provider = self.catalog.get(doc["provider"])
        settings = self.config.recovery
        result: tuple[bool, str, int] | None = None
        if provider is not None and provider.health_probe is not None:
            if now < recovery.get("next_probe_at", 0):
                return False
            if self.http is None:
                return False
            outcome = await probe(self.http, provider.health_probe, user_agent=settings.user_agent)
            self.metrics.probes.labels(
                provider.name, "success" if outcome.success else "failure"
            ).inc()
            result = (outcome.success, outcome.error or "", outcome.status_code)
        playbooks = {p.name: p for p in self.config.playbooks}
        needed = settings.probes_required

        def change(current: Doc | None) -> tuple[Doc | None, bool]:
            if current is None or current["state"] != inc.RECOVERING:
                return None, False
            rec = current.get("recovery") or {}
            if rec.get("steps_enqueued"):
                return None, False
            at = self._now()
            if result is None:
                inc.add_event(current, at, "no health probe configured: recovering on resolve")
                streak = needed
            else:
                success, error, status = result
                if success:
                    streak = rec.get("streak", 0) + 1
                    inc.add_event(current, at, f"probe {streak}/{needed} ok (HTTP {status})")
                else:
                    streak = 0
                    inc.add_event(current, at, f"probe failed: {error}, streak reset")
            rec["streak"] = streak
            rec["next_probe_at"] = at + settings.probe_interval_seconds
            if streak >= needed:
                rec["steps_enqueued"] = True
                current["recovered_at"] = at
                count = 0
                for name in current["playbooks"]:
                    playbook = playbooks.get(name)
                    if playbook is not None:
                        count += inc.enqueue(
                            current, "recovery", name, [_step(s) for s in playbook.resolved]
                        )
                inc.add_event(current, at, f"provider recovered: running {count} resolved steps")
            current["recovery"] = rec
            return current, bool(rec.get("steps_enqueued"))

        enqueued: bool = await self.store.update("incident", doc["id"], change)
        if enqueued:
            incident_id = doc["id"]

            def clear(active: Doc | None) -> tuple[Doc | None, None]:
                if active is None or active.get("incident") != incident_id:
                    return None, None
                return {"incident": None, "live": False}, None

            await self.store.update("active", doc["provider"], clear)
        return enqueued

    async def retry(self, incident_id: str) -> bool:
        """Put an incident's failed steps back to pending and run them (operator action)."""

        def change(doc: Doc | None) -> tuple[Doc | None, bool]:
            if doc is None:
                return None, False
            failed = [item for item in doc["work"] if item["status"] == "failed"]
            if not failed:
                return None, True
            for item in failed:
                item["status"] = "pending"
            recovering = (doc.get("recovery") or {}).get("steps_enqueued")
            doc["state"] = inc.RECOVERING if recovering else inc.STABILISED
            doc["live"] = True
            inc.add_event(doc, self._now(), f"retry requested: {len(failed)} failed steps")
            return doc, True

        found: bool = await self.store.update("incident", incident_id, change)
        if found:
            self._spawn(self.service_incident(incident_id))
        return found

    # --- notes ------------------------------------------------------------------------

    def due_notes(self, doc: Doc) -> list[tuple[NoteKind, int]]:
        if self.notifier is None:
            return []
        slots = set(doc.get("note_slots") or ())
        due: list[tuple[NoteKind, int]] = []
        if "initial:0" not in slots:
            due.append(("initial", 0))
        if doc["state"] == inc.RESOLVED:
            if "resolution:0" not in slots:
                due.append(("resolution", 0))
            return due
        interval = self.config.notes.update_interval_seconds
        slot = int((self._now() - doc["opened_at"]) // interval) if interval > 0 else 0
        if slot >= 1 and f"update:{slot}" not in slots:
            # After a pause (restart) only the current hour's update is posted.
            due.append(("update", slot))
        return due

    def schedule_notes(self, doc: Doc) -> None:
        due = self.due_notes(doc)
        if due:
            self._spawn(self._post_notes(doc["id"], due))

    async def _post_notes(self, incident_id: str, due: list[tuple[NoteKind, int]]) -> None:
        lock = self._note_locks.setdefault(incident_id, asyncio.Lock())
        async with lock:  # one incident's notes go out in order
            for kind, slot in due:
                with structlog.contextvars.bound_contextvars(incident_id=incident_id, note=kind):
                    try:
                        await self._post_note(incident_id, kind, slot)
                    except StoreUnavailable as exc:
                        log.warning("store unavailable while posting a note", error=str(exc))

    async def _post_note(self, incident_id: str, kind: NoteKind, slot: int) -> None:
        assert self.notifier is not None
        key = f"{kind}:{slot}"
        claimed = await self.store.claim_once(f"note:{incident_id}:{key}")
        if not claimed:
            await self.store.update(
                "incident", incident_id, _note_done(key, None, None, self._now())
            )
            return
        doc = await self.store.get("incident", incident_id)
        if doc is None:
            return
        interval = self.config.notes.update_interval_seconds
        next_at = None if kind == "resolution" else doc["opened_at"] + (slot + 1) * interval
        request = NoteRequest(
            kind=kind, slot=slot, incident=inc.view(doc), now=self._now(), next_update_at=next_at
        )
        try:
            merged = await self.notifier.post(request)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("note failed", error=error)
            self.metrics.notes.labels(kind, "failure").inc()
            await self.store.update(
                "incident", incident_id, _note_done(key, None, error, self._now())
            )
            return
        self.metrics.notes.labels(kind, "success").inc()
        await self.store.update(
            "incident", incident_id, _note_done(key, dict(merged or {}), None, self._now())
        )


# --- pure incident changes ----------------------------------------------------------


def _step(step: Any) -> dict[str, Any]:
    return {"action": step.action, "revert": step.revert, "params": dict(step.params)}


def _firing(
    entry: Doc, playbook: Playbook, now: float
) -> Callable[[Doc | None, set[str]], tuple[Doc | None, None]]:
    def change(doc: Doc | None, applied: set[str]) -> tuple[Doc | None, None]:
        if doc is None or entry["key"] in applied:
            return None, None
        alert = entry["alert"]
        _remember(doc, entry["key"], applied)
        if entry.get("group_key") and entry["group_key"] not in doc["group_keys"]:
            doc["group_keys"].append(entry["group_key"])
        fingerprint = alert["fingerprint"]
        existing = doc["alerts"].get(fingerprint)
        name = alert["labels"].get("alertname", "")
        if (
            existing
            and existing["starts_at"] == alert["startsAt"]
            and existing["status"] == "resolved"
        ):
            inc.add_event(doc, now, "stale firing copy ignored (already resolved)", alertname=name)
            return doc, None
        doc["alerts"][fingerprint] = _alert(alert)
        inc.add_event(
            doc,
            now,
            f"alert firing: {name}",
            fingerprint=fingerprint,
            group_key=entry.get("group_key"),
            truncated=entry.get("truncated", 0),
        )
        if playbook.name not in doc["playbooks"]:
            doc["playbooks"].append(playbook.name)
            count = inc.enqueue(doc, "firing", playbook.name, [_step(s) for s in playbook.firing])
            inc.add_event(doc, now, f"playbook {playbook.name}: {count} firing steps planned")
        if doc["state"] == inc.RECOVERING and not (doc.get("recovery") or {}).get("steps_enqueued"):
            doc["recovery"] = None
            doc["state"] = inc.STABILISED
            inc.add_event(doc, now, "alert fired again while recovering: probe streak reset")
            doc["state"] = inc.settled_state(doc)
        return doc, None

    return change


def _resolved(
    entry: Doc, now: float, provider: Provider, probes_required: int
) -> Callable[[Doc | None, set[str]], tuple[Doc | None, bool]]:
    def change(doc: Doc | None, applied: set[str]) -> tuple[Doc | None, bool]:
        if doc is None:
            return None, False
        if entry["key"] in applied:
            return None, True
        alert = entry["alert"]
        fingerprint = alert["fingerprint"]
        if fingerprint not in doc["alerts"]:
            return None, False
        _remember(doc, entry["key"], applied)
        doc["alerts"][fingerprint] = _alert(alert)
        name = alert["labels"].get("alertname", "")
        inc.add_event(doc, now, f"alert resolved: {name}", fingerprint=fingerprint)
        if inc.all_resolved(doc) and doc["state"] != inc.RECOVERING:
            doc["state"] = inc.RECOVERING
            doc["recovery"] = {
                "streak": 0,
                "next_probe_at": now,
                "started_at": now,
                "steps_enqueued": False,
            }
            if provider.health_probe is None:
                why = "no health probe: recovering on resolve"
            else:
                why = f"waiting for {probes_required} consecutive successful health probes"
            inc.add_event(doc, now, f"all alerts resolved: {why}")
        return doc, True

    return change


# Transitions applied to an incident, kept so re-applying an inbox entry after a crash
# is a no-op; the store's own dedupe covers older ones.
# Twice the inbox batch: an entry re-applied after a crash is always among them.
TRANSITIONS_KEPT = 2 * INBOX_BATCH


def _remember(doc: Doc, key: str, applied: set[str]) -> None:
    """``applied``: the caller's set of the document's kept keys (may hold trimmed ones
    too: an entry seen earlier in the same batch is still a repeat)."""
    applied.add(key)
    transitions = doc["transitions"]
    transitions.append(key)
    if len(transitions) > TRANSITIONS_KEPT:
        del transitions[:-TRANSITIONS_KEPT]


def _alert(alert: Doc) -> Doc:
    return {
        "fingerprint": alert["fingerprint"],
        "alertname": alert["labels"].get("alertname", ""),
        "status": alert["status"],
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "starts_at": alert["startsAt"],
        "ends_at": alert["endsAt"],
        "generator_url": alert.get("generatorURL", ""),
    }


def _set_state(state: str, now: float, why: str) -> Callable[[Doc | None], tuple[Doc | None, Doc]]:
    def change(doc: Doc | None) -> tuple[Doc | None, Doc]:
        assert doc is not None
        if doc["state"] != state:
            doc["state"] = state
            inc.add_event(doc, now, f"state {state}: {why}")
        return doc, doc

    return change


def _finish_item(
    item_id: str, ok: bool, now: float
) -> Callable[[Doc | None], tuple[Doc | None, None]]:
    def change(doc: Doc | None) -> tuple[Doc | None, None]:
        if doc is None:
            return None, None
        for item in doc["work"]:
            if item["id"] == item_id and item["status"] == "pending":
                item["status"] = "done" if ok else "failed"
                if not ok:
                    inc.add_event(doc, now, f"step {item_id} failed: needs attention")
                return doc, None
        return None, None

    return change


def _note_done(
    key: str, merged: dict[str, Any] | None, error: str | None, now: float
) -> Callable[[Doc | None], tuple[Doc | None, None]]:
    def change(doc: Doc | None) -> tuple[Doc | None, None]:
        if doc is None:
            return None, None
        if key not in doc["note_slots"]:
            doc["note_slots"].append(key)
        kind = key.partition(":")[0]
        if merged is not None:
            doc["notes"].update(merged)
            inc.add_event(doc, now, f"note posted: {key}")
        elif error is not None:
            inc.add_event(doc, now, f"note failed: {key}", error=error)
        if kind == "resolution" and doc["state"] == inc.RESOLVED:
            doc["live"] = False
        return doc, None

    return change
