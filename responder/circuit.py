"""Circuit breakers, one per external system (``Action.circuit``).

Opens after ``threshold`` consecutive failures; after ``reset_seconds`` one
trial call is let through (half-open): success closes it, failure re-opens it.
State is per replica: each replica protects the system from its own calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from feedguard.core.log import get_logger

from .metrics import Metrics

log = get_logger(__name__)


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False


class CircuitOpen(Exception):
    pass


class Breakers:
    def __init__(
        self, threshold: int, reset_seconds: float, clock: Callable[[], float], metrics: Metrics
    ) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.metrics = metrics
        self._states: dict[str, _State] = {}

    def _state(self, circuit: str) -> _State:
        state = self._states.get(circuit)
        if state is None:
            state = self._states[circuit] = _State()
            self.metrics.circuit_open.labels(circuit).set(0)
        return state

    def before_call(self, circuit: str) -> None:
        """Raise CircuitOpen unless a call may go through now."""
        state = self._state(circuit)
        if state.opened_at is None:
            return
        if state.trial_running or self.clock() - state.opened_at < self.reset_seconds:
            wait = max(0.0, state.opened_at + self.reset_seconds - self.clock())
            raise CircuitOpen(
                f"circuit {circuit!r} is open after {state.failures} failures "
                f"(next trial in {wait:.0f}s)"
            )
        state.trial_running = True
        log.warning("circuit breaker half-open: one trial call", circuit=circuit)

    def may_try(self, circuit: str) -> bool:
        """Whether a call would go through now (closed, or open with the reset elapsed)."""
        state = self._states.get(circuit)
        if state is None or state.opened_at is None:
            return True
        return not state.trial_running and self.clock() - state.opened_at >= self.reset_seconds

    def success(self, circuit: str) -> None:
        state = self._state(circuit)
        if state.opened_at is not None:
            log.warning("circuit breaker closed", circuit=circuit)
        state.failures = 0
        state.opened_at = None
        state.trial_running = False
        self.metrics.circuit_open.labels(circuit).set(0)

    def failure(self, circuit: str) -> None:
        state = self._state(circuit)
        state.failures += 1
        state.trial_running = False
        if state.opened_at is not None or state.failures >= self.threshold:
            state.opened_at = self.clock()
            self.metrics.circuit_open.labels(circuit).set(1)
            log.error(
                "circuit breaker open",
                circuit=circuit,
                failures=state.failures,
                retry_in_seconds=self.reset_seconds,
            )

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {
            name: {
                "open": s.opened_at is not None,
                "failures": s.failures,
                "opened_at": s.opened_at,
            }
            for name, s in self._states.items()
        }
