"""Read collected metric families back as plain samples, through the real text format."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from feedguard.exporter.scrape import render

Key = tuple[str, frozenset[tuple[str, str]]]
Samples = dict[Key, float]


def samples(families: Sequence[Metric]) -> dict[Key, float]:
    """{(name, {label: value}): value} as Prometheus would read the rendered scrape."""
    text = render(families).decode()
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict[Key, float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def series(found: dict[Key, float], name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in found.items() if n == name}
