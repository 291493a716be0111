"""OpenTelemetry traces, off by default: settings, the service's tracer, and carrying a
trace's context through the store (inbox entries, incident documents).

When ``tracing.enabled`` is false nothing is set up: the tracer is the API's no-op
one, aiohttp sessions get no trace config, log lines and timeline entries get no
``trace_id``.  When on, spans are exported over OTLP/HTTP (protobuf) by the SDK's
``BatchSpanProcessor``: ending a span only queues it, the export runs in the
processor's own thread, so the event loop never waits for the collector.  The
provider is this service's own (never the process-global one, which can be set
only once): tests start several services in one process.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Annotated, Any

import aiohttp
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import Field

from .log import redact_text
from .schema import ConfigError, ConfigModel, HttpUrl, PositiveFloat, PositiveInt, Secret
from .schema import read_secret as _read_secret

Carrier = dict[str, str]
_PROPAGATOR = TraceContextTextMapPropagator()
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
# What ``Tracing.span`` gives when tracing is off (reusable: nullcontext keeps no state).
_NO_SPAN: AbstractContextManager[trace.Span] = nullcontext(trace.INVALID_SPAN)


class TracingSettings(ConfigModel):
    enabled: bool = False
    # The OTLP/HTTP traces URL, used as is (like OTEL_EXPORTER_OTLP_TRACES_ENDPOINT):
    # a collector's OTLP/HTTP receiver listens on 4318 at /v1/traces (4317 is gRPC).
    endpoint: HttpUrl = "http://127.0.0.1:4318/v1/traces"
    # service.name of the spans; empty: the command's name (feedguard-responder).
    service_name: str = ""
    # Share of notifications traced (the seed's aurum-api-tracing samples 0.1); the
    # steps, notes and HTTP calls a notification causes follow its decision.
    sampling_ratio: Ratio = 0.1
    # Headers sent with every export (a collector's token), as OTEL_EXPORTER_OTLP_HEADERS
    # writes them: name=value pairs separated by commas, values URL-encoded.
    headers: Secret = Field(None, description="prefer FEEDGUARD_TRACING_HEADERS or headers_file")
    headers_file: str | None = None
    timeout_seconds: PositiveFloat = 10.0
    # Spans waiting for export beyond this are dropped (a collector that is down must
    # not grow the responder's memory).
    max_queue_size: PositiveInt = 2048

    def read_headers(self) -> dict[str, str]:
        """The export headers; ConfigError naming the pair that is wrong (never its value)."""
        raw = _read_secret(self.headers, self.headers_file, "tracing headers") or ""
        where = self.headers_file or "FEEDGUARD_TRACING_HEADERS"
        found: dict[str, str] = {}
        errors = []
        for index, pair in enumerate(p for p in raw.replace("\n", ",").split(",") if p.strip()):
            name, sep, value = pair.partition("=")
            name = urllib.parse.unquote(name.strip())
            if not sep or not name or any(c.isspace() for c in name):
                errors.append(f"{where}: tracing.headers: pair {index}: expected name=value")
                continue
            value = urllib.parse.unquote(value.strip())
            _read_secret(value, None, "tracing header")  # masked in logs from now on
            found[name] = value
        if errors:
            raise ConfigError(errors)
        return found


class Tracing:
    """The service's tracer; ``Tracing.off()`` when tracing is not enabled."""

    def __init__(self, tracer: trace.Tracer, provider: Any = None) -> None:
        self.tracer = tracer
        self._provider = provider  # the SDK's TracerProvider, None when off

    @classmethod
    def off(cls) -> Tracing:
        return cls(trace.NoOpTracer())

    @classmethod
    def start(cls, settings: TracingSettings, service_name: str, version: str) -> Tracing:
        """The SDK set up from ``settings`` (``off()`` when not enabled)."""
        if not settings.enabled:
            return cls.off()
        # Imported only when on: the SDK and exporter cost start-up time and memory.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        resource = Resource.create(
            {"service.name": settings.service_name or service_name, "service.version": version}
        )
        sampler = ParentBased(TraceIdRatioBased(settings.sampling_ratio))
        provider = TracerProvider(resource=resource, sampler=sampler)
        exporter = OTLPSpanExporter(
            endpoint=settings.endpoint,
            headers=settings.read_headers(),
            timeout=settings.timeout_seconds,
        )
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=settings.max_queue_size)
        )
        return cls(provider.get_tracer("feedguard", version), provider)

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    def trace_configs(self) -> list[aiohttp.TraceConfig]:
        """For an aiohttp session whose requests become child spans (none when off)."""
        if self._provider is None:
            return []
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        # The URL attribute loses credentials, Slack webhook paths and known secrets.
        return [
            create_trace_config(
                url_filter=lambda url: redact_text(str(url)), tracer_provider=self._provider
            )
        ]

    def shutdown(self) -> None:
        """Export what is queued and stop (blocks up to the export timeout: run in a thread)."""
        if self._provider is not None:
            self._provider.shutdown()

    def span(
        self,
        name: str,
        parent: Mapping[str, str] | None = None,
        *,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        links: Sequence[trace.Link] = (),
    ) -> AbstractContextManager[trace.Span]:
        """A current span; ``parent`` a carrier (``carrier()``) kept in the store, whose
        trace it joins.  An exception marks it failed with its type only: messages of
        client errors may quote URLs and answers.  Off: a ready no-op span, without
        the API's context switch (a no-op tracer's span cost ~12 us, this ~0.3 us)."""
        if self._provider is None:
            return _NO_SPAN
        return self._made_current(self._detached(name, parent, kind, attributes, links))

    def detached(
        self,
        name: str,
        parent: Mapping[str, str] | None = None,
        *,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        links: Sequence[trace.Link] = (),
    ) -> AbstractContextManager[trace.Span]:
        """Like ``span``, but not made current: several can be open side by side (one
        store transaction applying several incidents' updates); ``current`` enters one."""
        if self._provider is None:
            return _NO_SPAN
        return self._detached(name, parent, trace.SpanKind.INTERNAL, attributes, links)

    @contextmanager
    def _detached(
        self,
        name: str,
        parent: Mapping[str, str] | None,
        kind: trace.SpanKind,
        attributes: Mapping[str, str | int | float | bool] | None,
        links: Sequence[trace.Link],
    ) -> Iterator[trace.Span]:
        span = self.tracer.start_span(
            name,
            context=extract(parent) if parent else None,
            kind=kind,
            attributes=attributes,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        )
        try:
            yield span
        except BaseException as exc:
            span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            span.end()

    @staticmethod
    def current(span: trace.Span) -> AbstractContextManager[Any]:
        """Make a ``detached`` span current for a while (without ending it)."""
        if not span.get_span_context().is_valid:
            return nullcontext()
        return trace.use_span(span, record_exception=False, set_status_on_exception=False)

    @contextmanager
    def _made_current(self, detached: AbstractContextManager[trace.Span]) -> Iterator[trace.Span]:
        """A ``_detached`` span made current for its whole life."""
        with detached as span, self.current(span):
            yield span


def carrier() -> Carrier:
    """The current span's context as a W3C ``traceparent`` (empty when there is none)."""
    found: Carrier = {}
    _PROPAGATOR.inject(found)
    return found


def extract(found: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(found)


def span_link(found: Mapping[str, str]) -> trace.Link | None:
    """A link to the span a carrier names (None when it names none)."""
    context = trace.get_current_span(extract(found)).get_span_context()
    return trace.Link(context) if context.is_valid else None


def current_trace_id() -> str | None:
    """The current sampled trace's id (32 hex digits); None without one (tracing off,
    or a notification the sampler left out: its id leads to no trace)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return trace.format_trace_id(context.trace_id)
