"""A small async wrapper around the official ``kubernetes`` client for one ConfigMap.

The client is blocking (urllib3), so every call runs in a worker thread (with the
caller's context: ``asyncio.to_thread`` copies it, so the call's span is a child
of the step's); it is given its own request timeout so a thread never outlives the executor's
deadline by much.  Errors come back as ``ActionError`` carrying the API
server's ``Status`` message, retryable only where trying again can help.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from opentelemetry.trace import SpanKind

from feedguard.core.retry_after import retry_after_of
from feedguard.core.schema import read_secret
from feedguard.core.tracing import Tracing

from ..plugins import ActionError
from .settings import KubernetesSettings

# Answers that another attempt cannot change: wrong credentials or RBAC,
# missing object, a patch the server refuses.
_FINAL = frozenset({400, 401, 403, 404, 405, 415, 422})

MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class ConfigMapState:
    data: Mapping[str, str]
    annotations: Mapping[str, str]
    resource_version: str | None


def build_api_client(settings: KubernetesSettings) -> k8s.ApiClient:
    """An ApiClient from explicit host/token, the in-cluster account, or a kubeconfig.

    Blocking (reads files): call it in a thread.
    """
    configuration = k8s.Configuration()
    if settings.host:
        configuration.host = settings.host.rstrip("/")
        token = read_secret(settings.token, settings.token_file, "Kubernetes token")
        if token:
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        if settings.ca_file:
            configuration.ssl_ca_cert = settings.ca_file
        configuration.verify_ssl = settings.verify_ssl
    elif settings.in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # untyped client
    else:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped client
            config_file=settings.kubeconfig,
            context=settings.context,
            client_configuration=configuration,
        )
    # The executor owns retries; urllib3's own would multiply them silently.
    configuration.retries = False
    return k8s.ApiClient(configuration)


def _status_message(exc: k8s.ApiException, status: Any) -> str:
    """The Status object's message, or whatever the server said."""
    if isinstance(status, dict) and status.get("message"):
        reason = status.get("reason")
        return f"{status['message']} ({reason})" if reason else str(status["message"])
    if isinstance(status, str) and status:
        return status[:300]
    return str(exc.reason or "no message")


def _status_body(exc: k8s.ApiException) -> Any:
    """The answer's ``Status`` object as parsed, else its text (or None)."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return str(body)


def _retry_after(exc: k8s.ApiException, status_code: int, status: Any) -> float | None:
    """The API server's ``Retry-After`` (APF's 429 says 1), else the Status's
    ``details.retryAfterSeconds`` (the TooManyRequests reason's documented detail)."""
    seconds = retry_after_of(status_code, exc.headers)
    if seconds is not None:
        return seconds
    details = status.get("details") if isinstance(status, dict) else None
    value = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def api_error(exc: BaseException, what: str) -> ActionError:
    if isinstance(exc, k8s.ApiException):
        code = int(exc.status or 0)
        status = _status_body(exc)
        message = f"{what}: HTTP {code}: {_status_message(exc, status)}"
        retryable = code not in _FINAL
        return ActionError(
            message,
            retryable=retryable,
            status=code or None,
            retry_after=_retry_after(exc, code, status) if retryable else None,
        )
    # Connection refused, TLS, read timeout: the API server may come back.
    return ActionError(f"{what}: {type(exc).__name__}: {exc}", retryable=True)


class ConfigMapClient:
    """GET and merge-PATCH of one namespaced ConfigMap (what the RBAC Role allows)."""

    def __init__(self, settings: KubernetesSettings, tracing: Tracing | None = None) -> None:
        self._settings = settings
        self._tracing = tracing or Tracing.off()
        self._timeout = settings.timeout_seconds
        self._field_manager = settings.field_manager
        self._api_client: k8s.ApiClient | None = None
        self._core_api: k8s.CoreV1Api | None = None
        self._lock = asyncio.Lock()

    def _build_core(self) -> k8s.CoreV1Api:
        """Blocking: loads the configuration, and ``k8s.CoreV1Api`` is imported on
        first access (the client's lazy exports): 0.6-2 s, never on the event loop."""
        if self._api_client is None:
            self._api_client = build_api_client(self._settings)
        return k8s.CoreV1Api(self._api_client)

    async def _core(self) -> k8s.CoreV1Api:
        # Built by the start-up check (warm_up) when a playbook throttles, else on
        # first use: a responder whose playbooks never throttle (or a test without
        # a cluster) starts without any Kubernetes configuration.
        async with self._lock:
            if self._core_api is None:
                try:
                    self._core_api = await asyncio.to_thread(self._build_core)
                except Exception as exc:
                    raise ActionError(
                        f"cannot load the Kubernetes client configuration: {exc}",
                        retryable=False,
                    ) from exc
            return self._core_api

    async def warm_up(self, namespace: str, name: str) -> None:
        """The start-up check: build the client, GET the ConfigMap and PATCH it with an
        empty merge patch as a server-side dry run (the two verbs the RBAC Role
        grants: a missing one shows at start, not at 3 a.m.; nothing is persisted,
        and an empty merge patch changes nothing anyway).  Both open what the first
        throttle then reuses: the thread, the pooled connection, the models, and the
        pydantic validator the client builds on each API method's first call."""
        await self.read(namespace, name)
        await self.merge_patch(namespace, name, {}, dry_run=True)

    async def read(self, namespace: str, name: str) -> ConfigMapState:
        what = f"get configmap {namespace}/{name}"
        core = await self._core()
        obj = await self._call(
            "GET",
            namespace,
            what,
            core.read_namespaced_config_map,
            name,
            namespace,
            _request_timeout=self._timeout,
        )
        return _state(obj)

    async def merge_patch(
        self, namespace: str, name: str, body: Mapping[str, Any], *, dry_run: bool = False
    ) -> ConfigMapState:
        what = f"patch configmap {namespace}/{name}"
        kwargs: dict[str, Any] = {
            "_content_type": MERGE_PATCH,
            "_request_timeout": self._timeout,
            "field_manager": self._field_manager,
        }
        if dry_run:
            kwargs["dry_run"] = "All"
        core = await self._core()
        obj = await self._call(
            "PATCH",
            namespace,
            what,
            core.patch_namespaced_config_map,
            name,
            namespace,
            dict(body),
            **kwargs,
        )
        return _state(obj)

    async def _call(
        self, method: str, namespace: str, what: str, fn: Any, *args: Any, **kwargs: Any
    ) -> Any:
        attributes = {
            "http.request.method": method,
            "k8s.namespace.name": namespace,
            "feedguard.kubernetes.call": what,
            # The host only: a configured URL may carry credentials.
            "server.address": urlsplit(self._settings.host or "").hostname or "in-cluster",
        }
        name = f"kubernetes {method} configmap"
        with self._tracing.span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except k8s.ApiException as exc:
                span.set_attribute("http.response.status_code", exc.status or 0)
                raise api_error(exc, what) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise api_error(exc, what) from exc

    async def close(self) -> None:
        if self._api_client is not None:
            await asyncio.to_thread(self._api_client.close)
            self._api_client = None
            self._core_api = None


def _state(obj: Any) -> ConfigMapState:
    metadata = obj.metadata
    return ConfigMapState(
        data=dict(obj.data or {}),
        annotations=dict((metadata.annotations if metadata else None) or {}),
        resource_version=metadata.resource_version if metadata else None,
    )
