"""Outside clients built and checked at start, so the first action after a start is
not slower than later ones (issue 11).

Without it, the first throttle after a start paid for importing the Kubernetes
API module (the client imports ``CoreV1Api`` lazily: 0.6-2 s, on the event loop),
building its pydantic call validators, starting the worker thread, connecting,
and for Airflow detecting the version and fetching a token.  Each client now
registers a check (``ClientChecks.add``) that does all of that with one read the
RBAC and tokens already allow; the responder runs the checks of the clients its
playbooks use at start, in the background.

A check that fails never stops the start (downstream may be down at 3 a.m.): it
is logged as a warning, ``feedguard_responder_client_ready{client}`` stays 0,
``/readyz`` names the error, and it is retried every ``clients.retry_seconds``
until it passes; the action that needs the client meanwhile builds it itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Gauge

from feedguard.core.log import get_logger
from feedguard.core.tracing import Tracing

if TYPE_CHECKING:  # the actions package imports this module; config imports the actions
    from .config import ClientSettings

log = get_logger(__name__)

Check = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class ClientCheck:
    name: str  # kubernetes, airflow, runtime_config, slack
    check: Check  # builds, warms and checks the client; raises when it cannot
    actions: frozenset[str] = frozenset()  # the actions using it; empty: always checked


@dataclass
class ClientChecks:
    """What ``open_actions`` and ``open_notifier`` register for the start-up checks."""

    entries: list[ClientCheck] = field(default_factory=list)

    def add(self, name: str, check: Check, actions: Iterable[str] = ()) -> None:
        self.entries.append(ClientCheck(name, check, frozenset(actions)))

    def used(self, action_names: Collection[str]) -> list[ClientCheck]:
        """The checks of clients some playbook needs (notes: always)."""
        return [e for e in self.entries if not e.actions or e.actions & set(action_names)]


@dataclass
class ClientState:
    ready: bool = False
    error: str | None = None
    checked_at: float | None = None
    attempts: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "error": self.error,
            "checked_at": self.checked_at,
            "attempts": self.attempts,
        }


class ClientWarmup:
    """Runs the checks until each has passed once; the state feeds /readyz and the gauge."""

    def __init__(
        self,
        checks: Iterable[ClientCheck],
        settings: ClientSettings,
        gauge: Gauge,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self._checks = list(checks)
        self._tracing = tracing or Tracing.off()
        self._settings = settings
        self._gauge = gauge
        self._clock = clock
        self.states = {c.name: ClientState() for c in self._checks}
        for check in self._checks:
            gauge.labels(check.name).set(0)

    def view(self) -> dict[str, dict[str, Any]]:
        return {name: state.view() for name, state in sorted(self.states.items())}

    async def run(self) -> None:
        """Check every client; retry the failed ones until all passed."""
        pending = list(self._checks)
        while pending:
            results = await asyncio.gather(*(self._one(c) for c in pending))
            pending = [c for c, ok in zip(pending, results, strict=True) if not ok]
            if pending:
                await asyncio.sleep(self._settings.retry_seconds)

    async def _one(self, check: ClientCheck) -> bool:
        state = self.states[check.name]
        state.attempts += 1
        started = time.perf_counter()
        # A trace of its own per check (no notification is behind it), its calls as children.
        span = self._tracing.span(
            f"client check {check.name}", attributes={"feedguard.client": check.name}
        )
        try:
            with span:
                async with asyncio.timeout(self._settings.check_timeout_seconds):
                    await check.check()
        except Exception as exc:  # any failure is reported and retried, never raised
            error = _describe(exc, self._settings.check_timeout_seconds)
            if error != state.error:  # log changes, not every retry
                log.warning(
                    "client check failed; retrying",
                    client=check.name,
                    error=error,
                    retry_seconds=self._settings.retry_seconds,
                )
            state.ready, state.error, state.checked_at = False, error, self._clock()
            self._gauge.labels(check.name).set(0)
            return False
        state.ready, state.error, state.checked_at = True, None, self._clock()
        self._gauge.labels(check.name).set(1)
        log.info(
            "client ready",
            client=check.name,
            attempts=state.attempts,
            seconds=round(time.perf_counter() - started, 3),
        )
        return True


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"[:300]
