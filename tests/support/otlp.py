"""A local OTLP/HTTP trace receiver, as the OpenTelemetry protocol specifies it.

``POST /v1/traces`` with ``Content-Type: application/x-protobuf`` (optionally
``Content-Encoding: gzip``), the body an ``ExportTraceServiceRequest``.  Answers:
200 with an ``ExportTraceServiceResponse`` in the request's content type; 400 with
a ``google.rpc.Status`` when the body does not decode; 415 for another content type
(this receiver takes the binary protobuf encoding only, which is what
opentelemetry-exporter-otlp-proto-http sends); 405 for another method.  Every span
received is kept, decoded, for the test to check; so are the requests' headers.
"""

from __future__ import annotations

import gzip
import zlib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .fake_http import serve_app

PROTOBUF = "application/x-protobuf"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    kind: int  # opentelemetry.proto.trace.v1.Span.SpanKind
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    links: list[tuple[str, str]]  # (trace_id, span_id)
    resource: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]


def _attributes(values: Any) -> dict[str, Any]:
    return {a.key: _value(a.value) for a in values}


def _received(span: Span, resource: dict[str, Any]) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        kind=span.kind,
        attributes=_attributes(span.attributes),
        status_code=span.status.code,
        status_message=span.status.message,
        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
        resource=resource,
        events=[(e.name, _attributes(e.attributes)) for e in span.events],
    )


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/v1/traces", self._traces)
        return app

    def serve(self) -> AbstractAsyncContextManager[str]:
        """Serve on a free loopback port; yields the base URL (the endpoint is ``/v1/traces``)."""
        return serve_app(self.app())

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def children(self, parent: ReceivedSpan) -> list[ReceivedSpan]:
        return [
            s
            for s in self.spans
            if s.trace_id == parent.trace_id and s.parent_span_id == parent.span_id
        ]

    @staticmethod
    def _status(http_status: int, code: int, message: str) -> web.Response:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return web.Response(status=http_status, body=body, content_type=PROTOBUF)

    async def _traces(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        if request.content_type != PROTOBUF:
            return self._status(
                415, code_pb2.INVALID_ARGUMENT, f"unsupported content type {request.content_type}"
            )
        body = await request.read()
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                return self._status(400, code_pb2.INVALID_ARGUMENT, "body is not gzip")
        message = ExportTraceServiceRequest()
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            return self._status(400, code_pb2.INVALID_ARGUMENT, f"cannot decode: {exc}")
        self.requests += 1
        self.headers.append(dict(request.headers))
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(_received(span, resource))
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(status=200, body=answer, content_type=PROTOBUF)
