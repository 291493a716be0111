"""The provider catalog and allowlist: ``config/external_providers.yml``.

The catalog is the single source of truth for which providers and datasets
exist.  The exporter publishes a series for every enabled dataset in it, and
the responder never acts on a provider label that is not in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .kube_names import K8sName, LabelSelector
from .paths import resolve_paths
from .schema import (
    ConfigError,
    ConfigModel,
    DbtSelector,
    HttpUrl,
    Items,
    Name,
    Names,
    PositiveFloat,
    check,
    check_names,
    invalid,
    load_model,
)
from .yamlfile import read_yaml_all

HttpMethod = Literal["GET", "HEAD", "POST"]


class HealthProbe(ConfigModel):
    url: HttpUrl = Field(description="endpoint probed blackbox-style")
    method: HttpMethod = "GET"
    expected_status: Items[int] = (200,)
    timeout_seconds: PositiveFloat = 5.0

    @model_validator(mode="after")
    def _statuses(self) -> HealthProbe:
        bad = [s for s in self.expected_status if not 100 <= s <= 599]
        if not self.expected_status:
            invalid([("expected_status", "must list at least one status code")])
        if bad:
            invalid([("expected_status", f"not HTTP status codes: {bad}")])
        return self


class Dashboard(ConfigModel):
    title: str
    url: HttpUrl


def _check_text(value: Any) -> str | None:
    return None if str(value).strip() else "must not be empty"


Text = Annotated[str, check(_check_text)]


class LineageJob(ConfigModel):
    """An OpenLineage job (an Airflow DAG is ``<namespace>`` + ``dag_id``) that loads the provider.

    A COMPLETE of the job counts as a load of ``datasets`` (default: all of the
    provider's) when the run's conf names this provider (``lineage.provider_conf_key``).
    """

    namespace: Text
    name: Text
    datasets: Names = ()


class LineageOutput(ConfigModel):
    """An OpenLineage output dataset whose COMPLETE is a load of one catalog dataset."""

    namespace: Text
    name: Text
    dataset: Name


class ProviderLineage(ConfigModel):
    jobs: Items[LineageJob] = ()
    outputs: Items[LineageOutput] = ()


def _check_pointer(value: Any) -> str | None:
    text = str(value)
    if text and not text.startswith("/"):
        return f"expected a JSON pointer (RFC 6901) starting with '/', got {value!r}"
    return None


class ConsumerProbe(ConfigModel):
    """Freshness as a consumer sees it: the newest data timestamp an API serves."""

    # The ``endpoint`` label: what an operator calls it ("/v2/scenarios/iso-ne").
    endpoint: Text
    url: HttpUrl
    # Where the newest data timestamp is in the JSON answer (epoch seconds or ISO 8601).
    timestamp_pointer: Annotated[str, check(_check_pointer)]
    # Bearer token for the consumer API, read from this file (never inline).
    token_file: str | None = None
    timeout_seconds: PositiveFloat = 5.0


class StreamingJob(ConfigModel):
    """A SeaTunnel (Zeta) job that carries the provider's feeds."""

    name: Name = Field(description="the job's name in SeaTunnel (env job.name)")
    # The job's config for resubmission after a savepoint stop: HOCON (.conf,
    # .conf.tmpl) or JSON, relative to the catalog file's folder. Default:
    # <streaming.job_templates_dir>/<name>.conf.tmpl (responder.yml).
    config_file: str | None = None


class Workload(ConfigModel):
    """Pods whose logs are evidence (runbook 4: ``kubectl logs -l SELECTOR --since=30m``)."""

    namespace: K8sName
    selector: LabelSelector = Field(description="label selector, e.g. app=x")


class CredentialSecret(ConfigModel):
    """A Secret holding the provider's credentials; only its metadata is ever read."""

    namespace: K8sName
    name: K8sName
    # An annotation holding the credential's expiry (RFC 3339 or epoch seconds).
    expiry_annotation: str | None = None


class Provider(ConfigModel):
    name: Name
    description: str = ""
    enabled: bool = True
    datasets: Names = ()
    health_probe: HealthProbe | None = None
    fallback_mirror: bool = False
    dags: Names = ()
    dashboards: Items[Dashboard] = ()
    freshness_sla_seconds: PositiveFloat = 900.0
    # Evidence and streaming (docs/evidence.md): all optional.
    streaming_jobs: Items[StreamingJob] = ()
    workloads: Items[Workload] = ()
    credentials: Items[CredentialSecret] = ()
    # Optional: OpenLineage events that count as loads (docs/lineage.md).
    lineage: ProviderLineage = Field(default_factory=ProviderLineage)
    # Optional: consumer APIs whose data freshness is probed (docs/lineage.md).
    consumer_probes: Items[ConsumerProbe] = ()
    # Optional: the GX suite that verifies the provider's data after a backfill
    # (responder verification.suite when unset).
    quality_suite: Name | None = None
    # Optional: the dbt --select whose tests verify it, when the responder's
    # verification.dbt_tests is on (verification.dbt_tests.select when unset).
    dbt_select: DbtSelector | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Provider:
        endpoints = [p.endpoint for p in self.consumer_probes]
        jobs = check_names([j.name for j in self.streaming_jobs])
        invalid(
            [
                *([("streaming_jobs", jobs)] if jobs else []),
                *self._lineage_problems(),
                *(
                    (f"consumer_probes[{index}].endpoint", f"duplicate endpoint {name!r}")
                    for index, name in enumerate(endpoints)
                    if name in endpoints[:index]
                ),
            ]
        )
        return self

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


class Catalog(ConfigModel):
    providers: Items[Provider]

    @model_validator(mode="wrap")
    @classmethod
    def _no_duplicates(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Catalog:
        # Checked on the raw entries, so a duplicate is reported with the other
        # mistakes of an entry, not only once the entries are valid.
        providers = data.get("providers") if isinstance(data, dict) else None
        if not isinstance(providers, list | tuple):
            providers = []
        duplicates = _duplicate_providers(
            [p.get("name") if isinstance(p, dict) else getattr(p, "name", None) for p in providers]
        )
        problems: list[InitErrorDetails] = [
            {
                "type": PydanticCustomError("feedguard", "{message}", {"message": message}),
                "loc": ("providers", index, "name"),
                "input": data,
            }
            for index, message in duplicates
        ]
        try:
            catalog = handler(data)
        except ValidationError as exc:
            if not problems:
                raise
            raise ValidationError.from_exception_data(
                exc.title, [*problems, *_init_details(exc)]
            ) from None
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        assert isinstance(catalog, Catalog)
        return catalog

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


def _init_details(exc: ValidationError) -> list[InitErrorDetails]:
    """An error's details as raised again (custom messages kept as they were shown)."""
    return [
        {
            "type": PydanticCustomError(e["type"], e["msg"], e.get("ctx")),
            "loc": e["loc"],
            "input": e["input"],
        }
        for e in exc.errors(include_url=False)
    ]


def _duplicate_providers(names: list[Any]) -> list[tuple[int, str]]:
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
                (index, f"duplicate provider {name!r} (first at providers[{seen[key]}])")
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
        p.model_copy(
            update={"streaming_jobs": tuple(resolve_paths(job, base) for job in p.streaming_jobs)}
        )
        for p in catalog.providers
    )
    return Catalog(providers=providers)


def parse_catalog(data: object, source: str) -> Catalog:
    if data is None:
        raise ConfigError([f"{source}: <root>: the catalog is empty"])
    return load_model(Catalog, data, source)
