"""Which catalog datasets an OpenLineage event is about: pure functions over the catalog.

- A COMPLETE is a load of a catalog dataset when its job (namespace + name) is
  a provider's ``lineage.jobs`` entry and the run's conf names that provider
  (``provider_conf_key``), or when one of its outputs is a ``lineage.outputs`` entry.
- A FAIL or ABORT is counted for its job when the job is mapped, or is a task
  of a mapped DAG (``dag_id.task_id``), or one of its outputs is mapped.
- Anything else is unmatched (counted, never written); START, RUNNING and
  OTHER are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from feedguard.core.catalog import Catalog

from .event import LineageEvent

Kind = Literal["load", "failure", "unmatched", "ignored"]
FAILURES = ("FAIL", "ABORT")
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    kind: Kind
    loads: tuple[tuple[str, str], ...] = ()  # (provider, dataset)
    provider: str | None = None  # whose next incident gets a failure's message


@dataclass(frozen=True)
class LineageIndex:
    # (namespace, job name) -> {provider: datasets}
    jobs: dict[tuple[str, str], dict[str, tuple[str, ...]]]
    # (namespace, dataset name) -> [(provider, dataset)]
    outputs: dict[tuple[str, str], tuple[tuple[str, str], ...]]

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> LineageIndex:
        jobs: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
        outputs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for provider in catalog.providers:
            for job in provider.lineage.jobs:
                mapped = jobs.setdefault((job.namespace, job.name), {})
                mapped[provider.name] = _unique(
                    [*mapped.get(provider.name, ()), *provider.lineage_datasets(job)]
                )
            for out in provider.lineage.outputs:
                outputs.setdefault((out.namespace, out.name), []).append(
                    (provider.name, out.dataset)
                )
        return cls(jobs, {key: _unique(value) for key, value in outputs.items()})

    @property
    def empty(self) -> bool:
        return not self.jobs and not self.outputs

    def _job(self, event: LineageEvent, *, tasks: bool) -> dict[str, tuple[str, ...]] | None:
        found = self.jobs.get((event.job_namespace, event.job_name))
        if found is not None or not tasks:
            return found
        # A task of a mapped DAG: Airflow names task-level jobs "dag_id.task_id".
        for (namespace, name), mapped in self.jobs.items():
            if namespace == event.job_namespace and event.job_name.startswith(name + "."):
                return mapped
        return None

    def _outputs(self, event: LineageEvent) -> list[tuple[str, str]]:
        return [load for out in event.outputs for load in self.outputs.get(out, ())]

    def plan(self, event: LineageEvent, conf_key: str) -> Plan:
        provider = event.conf_value(conf_key)
        if event.event_type == "COMPLETE":
            job = self._job(event, tasks=False) or {}
            from_job = [(provider, d) for d in job.get(provider, ())] if provider else []
            loads = _unique([*from_job, *self._outputs(event)])
            return Plan("load", loads) if loads else Plan("unmatched")
        if event.event_type in FAILURES:
            task_of = self._job(event, tasks=True)
            outputs = self._outputs(event)
            if task_of is None and not outputs:
                return Plan("unmatched")
            if provider is None or provider not in (task_of or {}):
                provider = outputs[0][0] if outputs else None
            return Plan("failure", provider=provider)
        return Plan("ignored")


def _unique(items: Iterable[T]) -> tuple[T, ...]:
    """The items in their order, each once."""
    return tuple(dict.fromkeys(items))
