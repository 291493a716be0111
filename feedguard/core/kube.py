"""Read-only Kubernetes API calls for the evidence: pods, pod logs, Secret metadata.

An aiohttp client (the official client is blocking and would turn a Secret
into a V1Secret with its data): exactly the reads the RBAC of deploy/ grants,

- ``GET /api/v1/namespaces/{ns}/pods?labelSelector=...`` (``list`` pods),
- ``GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=&sinceSeconds=&limitBytes=&tailLines=``
  (``get`` pods/log),
- ``GET /api/v1/namespaces/{ns}/secrets/{name}`` with ``Accept:
  application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`` (``get`` on the
  named Secrets): the API server answers the metadata alone, so the Secret's
  data never reaches feedguard. No fallback media type is offered: a server
  that cannot convert answers 406 instead of sending the data, and an answer
  that carries ``data`` anyway is dropped unread.

The exporter (credential age and expiry) and the responder (incident
evidence) share it.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import Field, model_validator

from .errors import HttpAnswerError
from .kube_names import check_k8s_name
from .schema import ConfigError, ConfigModel, HttpUrl, PositiveFloat, Secret, read_secret

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class KubeConnection:
    """Where and how to reach the API server, resolved from settings."""

    host: str
    token: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    timeout_seconds: float = 10.0

    @classmethod
    def in_cluster(cls, timeout_seconds: float = 10.0) -> KubeConnection:
        """The pod's service account (as kubectl and client-go do in a pod)."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ValueError("in_cluster: KUBERNETES_SERVICE_HOST is not set (not in a pod?)")
        token = (_SA / "token").read_text().strip()
        return cls(
            host=f"https://{host}:{port}",
            token=token,
            ca_file=str(_SA / "ca.crt"),
            timeout_seconds=timeout_seconds,
        )


class KubeReadSettings(ConfigModel):
    """The exporter's ``kubernetes:`` section (credential metadata); off by default."""

    enabled: bool = False
    in_cluster: bool = False
    host: HttpUrl | None = Field(None, description="API server URL, when not in_cluster")
    token: Secret = Field(
        None, description="bearer token; prefer FEEDGUARD_KUBERNETES_TOKEN or a file"
    )
    token_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    timeout_seconds: PositiveFloat = 10.0

    @model_validator(mode="after")
    def _somewhere_to_connect(self) -> KubeReadSettings:
        if self.enabled and not self.in_cluster and not self.host:
            raise ValueError("host: Kubernetes is enabled but neither host nor in_cluster is set")
        return self

    def check(self) -> None:
        """Read the token now when enabled, so a missing file fails start-up (ConfigError)."""
        if not self.enabled:
            return
        try:
            self.connection()
        except (OSError, ValueError) as exc:
            raise ConfigError([f"<settings>: kubernetes: {exc}"]) from exc

    def connection(self) -> KubeConnection:
        if self.in_cluster:
            return KubeConnection.in_cluster(self.timeout_seconds)
        return KubeConnection(
            host=str(self.host),
            token=read_secret(self.token, self.token_file, "Kubernetes token"),
            ca_file=self.ca_file,
            verify_ssl=self.verify_ssl,
            timeout_seconds=self.timeout_seconds,
        )


class KubeError(HttpAnswerError):
    """A Status answer (``message (reason)``) or no answer (status 0)."""


def parse_time(value: Any) -> float | None:
    """RFC 3339 (``2026-12-01T00:10:00Z``) or epoch seconds, as epoch seconds."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class PodState:
    name: str
    namespace: str
    phase: str
    ready: bool
    restarts: int
    containers: tuple[str, ...]
    # Why a container last terminated (OOMKilled, Error, ...), per container.
    last_terminated: Mapping[str, str]
    waiting: Mapping[str, str]  # CrashLoopBackOff, ImagePullBackOff, ...

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PodState:
        meta = data.get("metadata") or {}
        spec = data.get("spec") or {}
        status = data.get("status") or {}
        conditions = status.get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        statuses = status.get("containerStatuses") or []
        last: dict[str, str] = {}
        waiting: dict[str, str] = {}
        for item in statuses:
            name = str(item.get("name", ""))
            terminated = (item.get("lastState") or {}).get("terminated")
            if terminated:
                last[name] = str(terminated.get("reason") or f"exit {terminated.get('exitCode')}")
            wait = (item.get("state") or {}).get("waiting")
            if wait:
                waiting[name] = str(wait.get("reason") or "Waiting")
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            phase=str(status.get("phase") or "Unknown"),
            ready=ready,
            restarts=sum(int(s.get("restartCount") or 0) for s in statuses),
            containers=tuple(str(c.get("name")) for c in spec.get("containers") or []),
            last_terminated=last,
            waiting=waiting,
        )


@dataclass(frozen=True)
class SecretMetadata:
    namespace: str
    name: str
    created_at: float | None
    # The newest managedFields time: when any field manager last wrote the Secret.
    modified_at: float | None
    modified_by: str | None
    expires_at: float | None
    expiry_annotation: str | None  # the raw value, when one was configured and present

    @property
    def changed_at(self) -> float | None:
        times = [t for t in (self.created_at, self.modified_at) if t is not None]
        return max(times) if times else None

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], expiry_annotation: str | None = None
    ) -> SecretMetadata:
        meta = data.get("metadata") or {}
        newest: tuple[float, str] | None = None
        for entry in meta.get("managedFields") or []:
            at = parse_time(entry.get("time"))
            if at is not None and (newest is None or at > newest[0]):
                newest = (at, str(entry.get("manager") or ""))
        raw = (meta.get("annotations") or {}).get(expiry_annotation) if expiry_annotation else None
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            created_at=parse_time(meta.get("creationTimestamp")),
            modified_at=newest[0] if newest else None,
            modified_by=newest[1] if newest else None,
            expires_at=parse_time(raw),
            expiry_annotation=str(raw) if raw is not None else None,
        )


def _ssl_context(connection: KubeConnection) -> ssl.SSLContext | bool:
    if not connection.host.startswith("https://"):
        return False
    if not connection.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=connection.ca_file)
    if connection.cert_file:
        context.load_cert_chain(connection.cert_file, connection.key_file)
    return context


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


class KubeReader:
    """The three reads; owns its aiohttp session (``close`` when done)."""

    def __init__(self, connection: KubeConnection) -> None:
        self._connection = connection
        self._root = connection.host.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=connection.timeout_seconds)
        self._headers = {"Authorization": f"Bearer {connection.token}"} if connection.token else {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self._connection))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(
        self, path: str, params: Mapping[str, str] | None = None, accept: str = "application/json"
    ) -> tuple[int, bytes]:
        headers = {**self._headers, "Accept": accept}
        try:
            async with self._client().get(
                self._root + path, params=params, headers=headers, timeout=self._timeout
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, f"GET {path}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _raise(status: int, body: bytes, what: str) -> None:
        if status < 400:
            return
        message = body.decode("utf-8", "replace")[:300]
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            reason = data.get("reason")
            message = f"{data['message']} ({reason})" if reason else str(data["message"])
        raise KubeError(status, f"{what}: {message}")

    async def list_pods(self, namespace: str, selector: str) -> list[PodState]:
        path = f"/api/v1/namespaces/{_path(namespace)}/pods"
        status, body = await self._get(path, {"labelSelector": selector})
        self._raise(status, body, f"list pods -n {namespace} -l {selector}")
        items = json.loads(body).get("items") or []
        return [PodState.from_json(item) for item in items]

    async def pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        since_seconds: int,
        limit_bytes: int,
        tail_lines: int,
    ) -> str:
        path = f"/api/v1/namespaces/{_path(namespace)}/pods/{_path(pod)}/log"
        params = {
            "container": container,
            "sinceSeconds": str(since_seconds),
            "limitBytes": str(limit_bytes),
            "tailLines": str(tail_lines),
            "timestamps": "true",
        }
        status, body = await self._get(path, params, accept="*/*")
        self._raise(status, body, f"logs {namespace}/{pod} -c {container}")
        return body.decode("utf-8", "replace")

    async def secret_metadata(
        self, namespace: str, name: str, expiry_annotation: str | None = None
    ) -> SecretMetadata:
        what = f"secret {namespace}/{name} metadata"
        for part in (namespace, name):
            if check_k8s_name(part):
                raise KubeError(0, f"{what}: {check_k8s_name(part)}")
        path = f"/api/v1/namespaces/{_path(namespace)}/secrets/{_path(name)}"
        status, body = await self._get(path, accept=METADATA_ONLY)
        self._raise(status, body, what)
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("kind") != "PartialObjectMetadata":
            # Never look further into it: it may hold the Secret's data.
            del data, body
            raise KubeError(status, f"{what}: the API server did not answer metadata only")
        return SecretMetadata.from_json(data, expiry_annotation)
