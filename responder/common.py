"""What every part of the scheduler (intake, runner, recovery, notes, steps) works
with: the config, the store, the metrics, the clock, this replica's lease owner and
the tracer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from feedguard.core.tracing import Tracing

from .config import ResponderConfig
from .metrics import Metrics
from .store import Store


@dataclass(frozen=True)
class Common:
    config: ResponderConfig
    store: Store
    metrics: Metrics
    clock: Callable[[], float]
    owner: str  # lease owner id of this replica
    tracing: Tracing


class Part:
    def __init__(self, common: Common) -> None:
        self.config = common.config
        self.store = common.store
        self.metrics = common.metrics
        self.clock = common.clock
        self.owner = common.owner
        self.tracing = common.tracing
