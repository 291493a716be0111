"""The inbox's urgent lane: which of a notification's transitions may open an incident.

A storm of repeats for one provider's open incident must not delay another
provider's first alert by the time it takes to drain them (issue 11: 9 to 21
minutes).  The webhook records, per provider, a firing alert a playbook takes in
the urgent lane, and the intake applies that lane before each batch of the
normal one (``Intake.process_inbox``).  At most one transition per provider every
``URGENT_EVERY_SECONDS`` per replica goes there, so a storm cannot fill the lane
with its own repeats; one that reaches an incident already open is merely applied
early (a resolved copy older than it is then ignored: ``transitions.resolve``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from feedguard.core.catalog import Catalog

from .config import Playbook
from .routing import PlaybookMatcher, check_provider

URGENT_EVERY_SECONDS = 5.0


class UrgentLane:
    def __init__(
        self,
        catalog: Catalog,
        playbooks: Iterable[Playbook],
        clock: Callable[[], float],
    ) -> None:
        self.catalog = catalog
        self.match_playbook = PlaybookMatcher(list(playbooks))
        self.clock = clock
        # provider → when it last had an urgent transition (bounded by the catalog).
        self._last: dict[str, float] = {}

    def pick(self, alerts: Iterable[tuple[str, Mapping[str, Any]]]) -> set[str]:
        """The transition keys (of ``(key, alert)`` pairs) to record as urgent."""
        now = self.clock()
        chosen: dict[str, str] = {}
        for key, alert in alerts:
            if alert.get("status") != "firing":
                continue
            labels = alert.get("labels") or {}
            name = labels.get("provider")
            # The cheap checks first: on most requests the provider had its turn.
            if not name or name in chosen:
                continue
            if now - self._last.get(name, -math.inf) < URGENT_EVERY_SECONDS:
                continue
            provider, _ = check_provider(self.catalog, labels)
            if provider is None or self.match_playbook(labels) is None:
                continue
            chosen[provider.name] = key
            self._last[provider.name] = now
        return set(chosen.values())
