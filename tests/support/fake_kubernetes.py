"""A local stand-in for the Kubernetes API server's ConfigMap endpoints.

Follows the API server's documented behaviour for what the responder uses:

- ``GET`` and ``PATCH /api/v1/namespaces/{namespace}/configmaps/{name}``;
- bearer tokens: an unknown token is 401 ``Unauthorized``; a known token
  without RBAC for that ConfigMap and verb is 403 ``Forbidden`` -- checked
  before existence, so a forbidden missing object is 403, not 404;
- patch content types ``application/merge-patch+json`` and
  ``application/strategic-merge-patch+json`` (identical for a ConfigMap's
  maps; ``null`` deletes a key); any other is 415;
- ``metadata.resourceVersion`` in a patch body is a precondition: stale is
  409 ``Conflict``; a patch that changes nothing keeps the resourceVersion;
- ``?dryRun=All`` answers with the result without persisting it;
- every error is a ``Status`` object as the API server writes it.

And the reads of the incident evidence (docs/evidence.md), authorised by
``allow(token, resource, verbs, ...)`` rules like an RBAC Role's:

- ``GET /api/v1/namespaces/{ns}/pods?labelSelector=`` (``list`` pods): a PodList,
  equality selectors (``a=b``, ``a==b``, ``a!=b``), a bad one is 400;
- ``GET /api/v1/namespaces/{ns}/pods/{pod}/log`` (``get`` pods/log) with
  ``container`` (required when the pod has several), ``sinceSeconds``, ``tailLines``,
  ``limitBytes`` (applied in that order, as the kubelet does), ``timestamps``;
  invalid values are 400;
- ``GET /api/v1/namespaces/{ns}/secrets/{name}`` (``get`` secrets, ``resourceNames``
  honoured): with ``Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1``
  the metadata alone (``kind: PartialObjectMetadata``), an unknown ``as=`` is 406,
  a plain Accept the whole Secret with its data.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .fake_http import (
    Arrival,
    record_arrivals,
    record_client_ports,
    retry_after_headers,
    serve_app,
)
from .fake_kubernetes_reads import KubernetesReads, status

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
PATCH_TYPES = (MERGE, STRATEGIC)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Grant:
    """What one token may do: verbs on ConfigMaps named (None = any name), like an RBAC Role."""

    user: str
    verbs: frozenset[str] = frozenset({"get", "patch"})
    names: frozenset[tuple[str, str]] | None = None  # (namespace, name)

    def allows(self, verb: str, namespace: str, name: str) -> bool:
        return verb in self.verbs and (self.names is None or (namespace, name) in self.names)


@dataclass
class FakeKubernetes(KubernetesReads):
    tokens: dict[str, Grant] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None, Any]] = field(default_factory=list)
    _version: int = 1000
    # Answer the next N requests with this status (e.g. 500, 409), then behave.
    fail_next: list[int] = field(default_factory=list)
    # An injected 429 is APF's: "Retry-After" this many seconds, also in the Status's
    # details.retryAfterSeconds (only there with retry_after_header False); None: neither.
    retry_after: int | None = None
    retry_after_header: bool = True
    # Method, path and arrival time of every request, in order.
    arrivals: list[Arrival] = field(default_factory=list)
    # The client port of every request, in order (one port: one TCP connection).
    client_ports: list[int] = field(default_factory=list)

    def grant(
        self,
        token: str,
        user: str = "system:serviceaccount:aurum-dev:feedguard-responder",
        verbs: Iterable[str] = ("get", "patch"),
        names: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        self.tokens[token] = Grant(
            user, frozenset(verbs), None if names is None else frozenset(names)
        )

    def put(self, namespace: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
        """Create or replace a ConfigMap (the test's own kubectl apply)."""
        self._version += 1
        obj = {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self._version),
                "creationTimestamp": "2026-01-01T00:00:00Z",
            },
            "data": dict(data),
        }
        self.configmaps[(namespace, name)] = obj
        return obj

    def data(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self.configmaps[(namespace, name)].get("data") or {})

    def patches(self) -> list[Any]:
        """Bodies of the PATCHes that could change something: server-side dry runs
        (``?dryRun=All``, e.g. the responder's start-up check) are left out."""
        return [
            body
            for method, path, _, body in self.requests
            if method == "PATCH" and "dryRun=All" not in path
        ]

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[record_arrivals(self.arrivals), record_client_ports(self.client_ports)]
        )
        path = "/api/v1/namespaces/{namespace}/configmaps/{name}"
        app.router.add_get(path, self._get)
        app.router.add_patch(path, self._patch)
        self.add_read_routes(app)
        return app

    def serve(self) -> AbstractAsyncContextManager[str]:
        """Serve on a free loopback port; yields the base URL."""
        return serve_app(self.app())

    # -- handlers --

    def _authorize(self, request: web.Request, verb: str) -> web.Response | None:
        namespace = request.match_info["namespace"]
        name = request.match_info["name"]
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        grant = self.tokens.get(token) if token else None
        if grant is None:
            return status(401, "Unauthorized", "Unauthorized")
        if not grant.allows(verb, namespace, name):
            return status(
                403,
                "Forbidden",
                f'configmaps "{name}" is forbidden: User "{grant.user}" cannot {verb} '
                f'resource "configmaps" in API group "" in the namespace "{namespace}"',
                {"name": name, "kind": "configmaps"},
            )
        return None

    def _injected(self) -> web.Response | None:
        if not self.fail_next:
            return None
        code = self.fail_next.pop(0)
        if code == 409:
            return status(409, "Conflict", "injected conflict", {"kind": "configmaps"})
        if code == 429:
            # As API Priority and Fairness rejects (apierrors.NewTooManyRequests).
            details = {} if self.retry_after is None else {"retryAfterSeconds": self.retry_after}
            answer = status(
                429, "TooManyRequests", "Too many requests, please try again later.", details
            )
            if self.retry_after is not None and self.retry_after_header:
                answer.headers.update(retry_after_headers(429, str(self.retry_after)))
            return answer
        return status(code, "InternalError", f"injected failure {code}", {})

    def _not_found(self, name: str) -> web.Response:
        return status(
            404, "NotFound", f'configmaps "{name}" not found', {"name": name, "kind": "configmaps"}
        )

    async def _get(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        self.requests.append(("GET", request.path, None, None))
        denied = self._authorize(request, "get") or self._injected()
        if denied is not None:
            return denied
        obj = self.configmaps.get((namespace, name))
        if obj is None:
            return self._not_found(name)
        return web.json_response(obj)

    async def _patch(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.requests.append(("PATCH", request.path_qs, content_type, body))
        denied = self._authorize(request, "patch") or self._injected()
        if denied is not None:
            return denied
        if content_type not in PATCH_TYPES:
            return status(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json-patch+json, {MERGE}, {STRATEGIC}, "
                f"application/apply-patch+yaml",
                {},
            )
        obj = self.configmaps.get((namespace, name))
        if obj is None:
            return self._not_found(name)
        if not isinstance(body, dict):
            return status(
                400,
                "BadRequest",
                "the server rejected our request due to an error in our request",
                {},
            )
        meta = body.get("metadata")
        wanted_version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if wanted_version is not None and wanted_version != obj["metadata"]["resourceVersion"]:
            return status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on configmaps "{name}": the object has been '
                f"modified; please apply your changes to the latest version and try again",
                {"name": name, "kind": "configmaps"},
            )
        patched = merge_patch(obj, body)
        patched["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        for key, value in (patched.get("data") or {}).items():
            if not isinstance(value, str):
                return status(
                    422,
                    "Invalid",
                    f'ConfigMap "{name}" is invalid: data[{key}]: Invalid value: {value!r}: '
                    f"must be a string",
                    {"name": name, "kind": "ConfigMap", "causes": [{"field": f"data[{key}]"}]},
                )
        if not patched["metadata"].get("annotations"):
            patched["metadata"].pop("annotations", None)
        if not patched.get("data"):
            patched.pop("data", None)
        if request.query.get("dryRun") == "All":
            return web.json_response(patched)  # validated, not persisted
        if patched != obj:
            self._version += 1
            patched["metadata"]["resourceVersion"] = str(self._version)
            self.configmaps[(namespace, name)] = patched
        return web.json_response(patched)
