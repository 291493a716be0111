"""Per-client token buckets (the seed's aurum-api-rate-limits), pure and clock-free.

A client may send ``burst`` requests at once and ``requests`` per ``window``
seconds sustained: the bucket holds ``burst`` tokens and refills at
``requests / window`` per second.  Callers pass the time, so the arithmetic is
tested without sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # Whole seconds until the next request would be allowed (Retry-After); 0 when allowed.
    retry_after: int


class TokenBuckets:
    """One bucket per key; forgets full buckets when more than ``max_keys`` are held."""

    def __init__(self, requests: int, window: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = requests / window
        self.capacity = float(burst)
        self.max_keys = max_keys
        # key -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float) -> Verdict:
        tokens, since = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - since) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_keys:
                self._forget_full(now)
            return Verdict(True, 0)
        self._buckets[key] = (tokens, now)
        return Verdict(False, max(1, math.ceil((1.0 - tokens) / self.rate)))

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: drop it to bound memory.
        full = [
            key
            for key, (tokens, since) in self._buckets.items()
            if tokens + (now - since) * self.rate >= self.capacity
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
