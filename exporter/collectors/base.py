"""What every collector is: an async source of freshly built metric families."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.metrics_core import Metric


@dataclass(frozen=True)
class Deadline:
    """An absolute point on the event loop's clock by which a scrape must be answered."""

    at: float

    @classmethod
    def in_seconds(cls, seconds: float) -> Deadline:
        return cls(asyncio.get_running_loop().time() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def bound(self, timeout: float) -> float:
        """The smaller of a source's own timeout and what is left of the scrape."""
        return min(timeout, self.remaining())


class Collector(Protocol):
    """A source of metrics.

    ``collect`` gathers with async I/O and returns families built from what it
    gathered; it raises on failure (the scrape then reports
    ``external_exporter_collector_up{collector=name} 0`` and serves the rest).
    It must finish before ``deadline``; it is cancelled when it does not.
    """

    name: str

    async def collect(self, deadline: Deadline) -> Sequence[Metric]: ...
