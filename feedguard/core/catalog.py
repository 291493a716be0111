"""The provider catalog and allowlist: ``config/external_providers.yml``.

The catalog is the single source of truth for which providers and datasets
exist.  The exporter publishes a series for every enabled dataset in it, and
the responder never acts on a provider label that is not in it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .kube_names import check_k8s_name, check_label_selector
from .paths import resolve_paths
from .schema import (
    ConfigError,
    check_http_url,
    check_name,
    check_names,
    check_positive,
    field,
    invalid,
    load_dataclass,
    read_yaml_all,
)

HttpMethod = Literal["GET", "HEAD", "POST"]


@dataclass(frozen=True)
class HealthProbe:
    url: str = field(check=check_http_url, doc="endpoint probed blackbox-style")
    method: HttpMethod = "GET"
    expected_status: tuple[int, ...] = (200,)
    timeout_seconds: float = field(5.0, check=check_positive)

    def __post_init__(self) -> None:
        bad = [s for s in self.expected_status if not 100 <= s <= 599]
        if not self.expected_status:
            invalid([("expected_status", "must list at least one status code")])
        if bad:
            invalid([("expected_status", f"not HTTP status codes: {bad}")])


@dataclass(frozen=True)
class Dashboard:
    title: str
    url: str = field(check=check_http_url)


def _check_text(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


@dataclass(frozen=True)
class LineageJob:
    """An OpenLineage job (an Airflow DAG is ``<namespace>`` + ``dag_id``) that loads the provider.

    A COMPLETE of the job counts as a load of ``datasets`` (default: all of the
    provider's) when the run's conf names this provider (``lineage.provider_conf_key``).
    """

    namespace: str = field(check=_check_text)
    name: str = field(check=_check_text)
    datasets: tuple[str, ...] = field((), check=check_names)


@dataclass(frozen=True)
class LineageOutput:
    """An OpenLineage output dataset whose COMPLETE is a load of one catalog dataset."""

    namespace: str = field(check=_check_text)
    name: str = field(check=_check_text)
    dataset: str = field(check=check_name)


@dataclass(frozen=True)
class ProviderLineage:
    jobs: tuple[LineageJob, ...] = ()
    outputs: tuple[LineageOutput, ...] = ()


def _check_pointer(value: Any) -> str | None:
    text = str(value)
    if text and not text.startswith("/"):
        return f"expected a JSON pointer (RFC 6901) starting with '/', got {value!r}"
    return None


@dataclass(frozen=True)
class ConsumerProbe:
    """Freshness as a consumer sees it: the newest data timestamp an API serves."""

    # The ``endpoint`` label: what an operator calls it ("/v2/scenarios/iso-ne").
    endpoint: str = field(check=_check_text)
    url: str = field(check=check_http_url)
    # Where the newest data timestamp is in the JSON answer (epoch seconds or ISO 8601).
    timestamp_pointer: str = field(check=_check_pointer)
    # Bearer token for the consumer API, read from this file (never inline).
    token_file: str | None = None
    timeout_seconds: float = field(5.0, check=check_positive)


@dataclass(frozen=True)
class StreamingJob:
    """A SeaTunnel (Zeta) job that carries the provider's feeds."""

    name: str = field(check=check_name, doc="the job's name in SeaTunnel (env job.name)")
    # The job's config for resubmission after a savepoint stop: HOCON (.conf,
    # .conf.tmpl) or JSON, relative to the catalog file's folder. Default:
    # <streaming.job_templates_dir>/<name>.conf.tmpl (responder.yml).
    config_file: str | None = None


@dataclass(frozen=True)
class Workload:
    """Pods whose logs are evidence (runbook 4: ``kubectl logs -l SELECTOR --since=30m``)."""

    namespace: str = field(check=check_k8s_name)
    selector: str = field(check=check_label_selector, doc="label selector, e.g. app=x")


@dataclass(frozen=True)
class CredentialSecret:
    """A Secret holding the provider's credentials; only its metadata is ever read."""

    namespace: str = field(check=check_k8s_name)
    name: str = field(check=check_k8s_name)
    # An annotation holding the credential's expiry (RFC 3339 or epoch seconds).
    expiry_annotation: str | None = None


@dataclass(frozen=True)
class Provider:
    name: str = field(check=check_name)
    description: str = ""
    enabled: bool = True
    datasets: tuple[str, ...] = field((), check=check_names)
    health_probe: HealthProbe | None = None
    fallback_mirror: bool = False
    dags: tuple[str, ...] = field((), check=check_names)
    dashboards: tuple[Dashboard, ...] = ()
    freshness_sla_seconds: float = field(900.0, check=check_positive)
    # Evidence and streaming (docs/evidence.md): all optional.
    streaming_jobs: tuple[StreamingJob, ...] = ()
    workloads: tuple[Workload, ...] = ()
    credentials: tuple[CredentialSecret, ...] = ()
    # Optional: OpenLineage events that count as loads (docs/lineage.md).
    lineage: ProviderLineage = ProviderLineage()
    # Optional: consumer APIs whose data freshness is probed (docs/lineage.md).
    consumer_probes: tuple[ConsumerProbe, ...] = ()

    def __post_init__(self) -> None:
        # Also checked while loading; repeated for catalogs built in code.
        invalid(
            (what, message)
            for what, items in (
                ("datasets", self.datasets),
                ("dags", self.dags),
                ("streaming_jobs", [j.name for j in self.streaming_jobs]),
            )
            if (message := check_names(items))
        )
        endpoints = [p.endpoint for p in self.consumer_probes]
        invalid(
            [
                *self._lineage_problems(),
                *(
                    (f"consumer_probes[{index}].endpoint", f"duplicate endpoint {name!r}")
                    for index, name in enumerate(endpoints)
                    if name in endpoints[:index]
                ),
            ]
        )

    def _lineage_problems(self) -> list[tuple[str, str]]:
        known = set(self.datasets)
        problems = [
            (f"lineage.jobs[{index}].datasets", f"not datasets of this provider: {unknown}")
            for index, job in enumerate(self.lineage.jobs)
            if (unknown := sorted(set(job.datasets) - known))
        ]
        problems += [
            (
                f"lineage.outputs[{index}].dataset",
                f"{out.dataset!r} is not a dataset of this provider",
            )
            for index, out in enumerate(self.lineage.outputs)
            if out.dataset not in known
        ]
        return problems

    def lineage_datasets(self, job: LineageJob) -> tuple[str, ...]:
        return job.datasets or self.datasets


@dataclass(frozen=True)
class Catalog:
    providers: tuple[Provider, ...]

    def __post_init__(self) -> None:
        invalid(_duplicate_providers([p.name for p in self.providers]))

    @staticmethod
    def check_raw(data: dict[str, Any]) -> list[tuple[str, str]]:
        """Duplicates among the raw entries, reported even when an entry is otherwise bad."""
        providers = data.get("providers")
        if not isinstance(providers, list):
            return []
        return _duplicate_providers(
            [item.get("name") if isinstance(item, dict) else None for item in providers]
        )

    def get(self, name: str) -> Provider | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None

    @property
    def enabled(self) -> tuple[Provider, ...]:
        return tuple(p for p in self.providers if p.enabled)

    def streaming_jobs(self) -> list[tuple[str, StreamingJob]]:
        """(provider, job) for every streaming job of every enabled provider."""
        return [(p.name, j) for p in self.enabled for j in p.streaming_jobs]

    def credentials(self) -> list[tuple[str, CredentialSecret]]:
        """(provider, Secret) for every credential Secret of every enabled provider."""
        return [(p.name, c) for p in self.enabled for c in p.credentials]

    def datasets(self) -> list[tuple[str, str]]:
        """(provider, dataset) for every dataset of every enabled provider."""
        return [(p.name, d) for p in self.enabled for d in p.datasets]

    def require(
        self, provider: str, dataset: str | None = None, *, enabled: bool = True
    ) -> Provider:
        """The provider (and dataset) named, or ValueError saying what is wrong.

        ``enabled=False`` accepts a provider the allowlist has disabled for now.
        """
        found = self.get(provider)
        if found is None:
            names = ", ".join(p.name for p in self.providers)
            raise ValueError(f"provider {provider!r} is not in the catalog (known: {names})")
        if enabled and not found.enabled:
            raise ValueError(f"provider {provider!r} is disabled in the catalog")
        if dataset is not None and dataset not in found.datasets:
            known = ", ".join(found.datasets) or "none"
            raise ValueError(
                f"dataset {dataset!r} is not a dataset of provider {provider!r} (known: {known})"
            )
        return found


def _duplicate_providers(names: list[Any]) -> list[tuple[str, str]]:
    problems = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue
        # Case-insensitive: "ISO-NE" and "iso-ne" would share Redis keys
        # on the platform's side and confuse every operator.
        key = name.casefold()
        if key in seen:
            problems.append(
                (
                    f"providers[{index}].name",
                    f"duplicate provider {name!r} (first at providers[{seen[key]}])",
                )
            )
        else:
            seen[key] = index
    return problems


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate the catalog file, raising ConfigError with every problem."""
    data, errors = read_yaml_all(path)
    try:
        catalog = parse_catalog(data, str(path))
    except ConfigError as exc:
        raise ConfigError([*errors, *exc.errors]) from None
    if errors:
        raise ConfigError(errors)
    return _relative_to(catalog, Path(path).parent)


def _relative_to(catalog: Catalog, base: Path) -> Catalog:
    """Relative paths in the catalog (streaming jobs' config_file) joined to its folder,
    the rule of every config file (feedguard/core/paths.py)."""
    providers = tuple(
        dataclasses.replace(
            p, streaming_jobs=tuple(resolve_paths(job, base) for job in p.streaming_jobs)
        )
        for p in catalog.providers
    )
    return Catalog(providers)


def parse_catalog(data: object, source: str) -> Catalog:
    if data is None:
        raise ConfigError([f"{source}: <root>: the catalog is empty"])
    return load_dataclass(Catalog, data, source)
