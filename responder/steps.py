"""What running a step needs, shared by applying (``apply.py``) and undoing
(``revert.py``): calling an action with timeout, retries, backoff and its circuit
breaker; the action's parameters and context; writing a target's record to the
ledger as soon as it is known, so a restart resumes after the last recorded target.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from feedguard.core.catalog import Provider
from feedguard.core.log import get_logger

from . import flags
from . import incidents as inc
from .circuit import Breakers, CircuitOpen
from .common import Common, Part
from .config import ExecutorSettings, ResponderConfig
from .intents import LedgerIntents
from .plugins import Action, ActionError, Outcome, StepContext, Target
from .records import add_record, new_record

log = get_logger(__name__)

Doc = dict[str, Any]
Renew = Callable[[], Awaitable[None]]


class LeaseLost(Exception):
    """Another replica took over this incident; stop without recording more."""


class StepKit(Part):
    def __init__(self, common: Common, actions: Mapping[str, Action], breakers: Breakers) -> None:
        super().__init__(common)
        self.actions = actions
        self.breakers = breakers

    async def call(
        self, action: Action, fn: Callable[[], Awaitable[Outcome]]
    ) -> tuple[Outcome | None, str | None, int, bool]:
        """(outcome, error, attempts made, transient) with timeout, retries, backoff,
        breaker.  ``transient``: the failure may pass by itself (connection error,
        timeout, 5xx, open breaker), so the step is retried later without a human."""
        settings = self.config.executor
        error = "not attempted"
        for attempt in range(1, settings.attempts + 1):
            retry_after: float | None = None
            try:
                self.breakers.before_call(action.circuit)
            except CircuitOpen as exc:
                return None, str(exc), attempt - 1, True
            try:
                async with asyncio.timeout(settings.timeout_seconds):
                    outcome = await fn()
            except ActionError as exc:
                error = str(exc)
                retry_after = exc.retry_after
                if exc.status and f"HTTP {exc.status}" not in error:
                    error += f" (HTTP {exc.status})"
                if not exc.retryable:
                    # The system answered: a refusal says nothing about its health.
                    self.breakers.success(action.circuit)
                    return None, error, attempt, False
                if exc.status == 429:
                    # Rate limited: the system is up and paces us (Retry-After, above).
                    # Counted as a failure, a few 429s would open the breaker and stop
                    # every call to it for circuit_reset_seconds, not the seconds asked.
                    self.breakers.success(action.circuit)
                else:
                    self.breakers.failure(action.circuit)
            except TimeoutError:
                error = f"timed out after {settings.timeout_seconds:g}s"
                self.breakers.failure(action.circuit)
            except Exception as exc:  # an action's bug or client error is a failed attempt
                error = f"{type(exc).__name__}: {exc}"
                self.breakers.failure(action.circuit)
            else:
                self.breakers.success(action.circuit)
                return outcome, None, attempt, False
            if attempt < settings.attempts:
                delay = retry_delay(settings, attempt, retry_after)
                log.warning(
                    "action attempt failed",
                    action=action.name,
                    attempt=attempt,
                    error=error,
                    retry_after=retry_after,
                    delay_seconds=round(delay, 3),
                )
                await asyncio.sleep(delay)
        return None, error, settings.attempts, True

    async def record(
        self,
        doc: Doc,
        item: Doc,
        action: str,
        target: Target,
        result: str,
        event: str,
        **fields: Any,
    ) -> None:
        """Write one target's result (``fields``: see ``records.new_record``)."""
        record = new_record(item, action, target, result, self.clock(), **fields)

        def change(current: Doc | None) -> tuple[Doc | None, None]:
            if current is None or not add_record(current, item, record, event):
                return None, None
            return current, None

        await self.store.update("incident", doc["id"], change)
        self.metrics.actions.labels(record["action"], record["result"]).inc()
        if record["result"] == "failure":
            log.error(
                "action step failed",
                incident_id=doc["id"],
                action=record["action"],
                target=record.get("target"),
                error=record.get("error"),
            )

    async def modes(self, action: str) -> flags.Modes:
        return await flags.modes(self.config, self.store, action)

    def context(
        self, doc: Doc, provider: Provider, params: Mapping[str, Any], dry: bool
    ) -> StepContext:
        now = self.clock()
        return StepContext(
            incident=inc.view(doc),
            provider=provider,
            params=params,
            now=now,
            dry_run=dry,
            intents=LedgerIntents(self.store, doc, now),
        )

    def params(self, action: str, step_params: Mapping[str, Any]) -> dict[str, Any]:
        return action_params(self.config, action, step_params)


def retry_delay(settings: ExecutorSettings, attempt: int, retry_after: float | None) -> float:
    """The pause after failed attempt ``attempt``: the backoff, or longer when the
    system asked for it (Retry-After), but no more than ``max_retry_after_seconds``
    for that ask: a server saying "in an hour" must not hold the step for an hour."""
    backoff = settings.backoff_initial_seconds * settings.backoff_factor ** (attempt - 1)
    if retry_after is None:
        return backoff
    return max(backoff, min(retry_after, settings.max_retry_after_seconds))


def action_params(
    config: ResponderConfig, action: str, step_params: Mapping[str, Any]
) -> dict[str, Any]:
    """A step's params over the action's configured defaults (``action_options``)."""
    options = config.action_options.get(action)
    return {**(dict(options.params) if options else {}), **step_params}
