"""Which provider and playbook an alert belongs to (pure; shared by the scheduler's
intake and ``simulate``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from feedguard.core.catalog import Catalog, Provider

from .config import Playbook


def check_provider(
    catalog: Catalog, labels: Mapping[str, str]
) -> tuple[Provider | None, str | None]:
    """The alert's provider, or None and why the alert is ignored."""
    name = labels.get("provider")
    if not name:
        return None, "alert has no provider label"
    provider = catalog.get(name)
    if provider is None:
        return None, f"provider {name!r} is not in the catalog"
    if not provider.enabled:
        return None, f"provider {name!r} is disabled in the catalog"
    return provider, None


class PlaybookMatcher:
    """The first playbook whose matchers all match, with the matchers parsed once
    (``Playbook.parsed_matchers`` parses on every access)."""

    def __init__(self, playbooks: Sequence[Playbook]) -> None:
        self._matchers = [(p, p.parsed_matchers) for p in playbooks]

    def __call__(self, labels: Mapping[str, str]) -> Playbook | None:
        for playbook, matchers in self._matchers:
            if all(m.matches(labels) for m in matchers):
                return playbook
        return None
