"""The read endpoints of the fake API server: pods, pods/log, Secret metadata.

A mixin of ``FakeKubernetes`` (tests/support/fake_kubernetes.py, which
documents the behaviour); kept apart so each module stays one concern.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from feedguard.core.kube_names import check_label_selector, parse_label_selector

NS = "/api/v1/namespaces/{namespace}"
_METADATA_AS = {
    ("PartialObjectMetadata", "meta.k8s.io", "v1"),
    ("PartialObjectMetadata", "meta.k8s.io", "v1beta1"),
}


def status(
    code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
) -> web.Response:
    """A ``Status`` object as the API server writes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
    return web.json_response(body, status=code)


def rfc3339(epoch: float, nanos: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if nanos:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ReadRule:
    """One RBAC rule: verbs on a resource, optionally only some namespaces or names."""

    resource: str  # pods, pods/log, secrets
    verbs: frozenset[str]
    namespaces: frozenset[str] | None = None
    names: frozenset[str] | None = None

    def allows(self, resource: str, verb: str, namespace: str, name: str | None) -> bool:
        return (
            resource == self.resource
            and verb in self.verbs
            and (self.namespaces is None or namespace in self.namespaces)
            and (self.names is None or (name is not None and name in self.names))
        )


@dataclass
class KubernetesReads:
    read_rules: dict[str, list[ReadRule]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # (namespace, pod, container) -> [(epoch, line)]
    logs: dict[tuple[str, str, str], list[tuple[float, str]]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # The API server's clock for sinceSeconds; None = time.time().
    now: float | None = None
    # Every read: (method, path with query, Accept header, None).
    reads: list[tuple[str, str, str, None]] = field(default_factory=list)
    # A server that ignores the Accept parameters (before Kubernetes 1.15): the whole Secret.
    ignore_accept_params: bool = False

    # -- the test's own kubectl --

    def allow(
        self,
        token: str,
        resource: str,
        verbs: Iterable[str],
        namespaces: Iterable[str] | None = None,
        names: Iterable[str] | None = None,
    ) -> None:
        self.read_rules.setdefault(token, []).append(
            ReadRule(
                resource,
                frozenset(verbs),
                None if namespaces is None else frozenset(namespaces),
                None if names is None else frozenset(names),
            )
        )

    def add_pod(
        self,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        containers: Sequence[str] = ("main",),
        *,
        ready: bool = True,
        restarts: int = 0,
        phase: str = "Running",
        last_terminated: str | None = None,
        waiting: str | None = None,
    ) -> None:
        statuses = []
        for container in containers:
            item: dict[str, Any] = {
                "name": container,
                "ready": ready,
                "restartCount": restarts,
                "image": "aurum/external-collector:1.4.2",
                "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}},
                "lastState": {},
            }
            if waiting:
                item["state"] = {"waiting": {"reason": waiting, "message": "back-off"}}
            if last_terminated:
                item["lastState"] = {"terminated": {"reason": last_terminated, "exitCode": 1}}
            statuses.append(item)
        self.pods[(namespace, name)] = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "labels": dict(labels),
                "creationTimestamp": "2026-12-01T00:00:00Z",
            },
            "spec": {"containers": [{"name": c, "image": "x"} for c in containers]},
            "status": {
                "phase": phase,
                "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False"},
                    {"type": "ContainersReady", "status": "True" if ready else "False"},
                ],
                "containerStatuses": statuses,
            },
        }

    def add_log(self, namespace: str, pod: str, container: str, at: float, line: str) -> None:
        self.logs.setdefault((namespace, pod, container), []).append((at, line))

    def add_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        created: float,
        modified: Sequence[tuple[str, float]] = (),
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        managed = [
            {
                "manager": manager,
                "operation": "Update",
                "apiVersion": "v1",
                "time": rfc3339(at),
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, **{f"f:{k}": {} for k in data}}},
            }
            for manager, at in modified or [("kubectl-create", created)]
        ]
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "4711",
            "creationTimestamp": rfc3339(created),
            "managedFields": managed,
        }
        if annotations:
            metadata["annotations"] = dict(annotations)
        self.secrets[(namespace, name)] = {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": metadata,
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }

    def add_read_routes(self, app: web.Application) -> None:
        app.router.add_get(NS + "/pods", self._list_pods)
        app.router.add_get(NS + "/pods/{name}/log", self._pod_log)
        app.router.add_get(NS + "/secrets/{name}", self._secret)

    # -- handlers --

    def _deny(
        self, request: web.Request, verb: str, resource: str, name: str | None
    ) -> web.Response | None:
        namespace = request.match_info["namespace"]
        self.reads.append(("GET", request.path_qs, request.headers.get("Accept", ""), None))
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        known = getattr(self, "tokens", {})
        if token not in self.read_rules and token not in known:
            return status(401, "Unauthorized", "Unauthorized")
        if any(r.allows(resource, verb, namespace, name) for r in self.read_rules.get(token, [])):
            return None
        kind = resource.partition("/")[0]
        what = f'{kind} "{name}"' if name else kind
        return status(
            403,
            "Forbidden",
            f'{what} is forbidden: User "system:serviceaccount:aurum-dev:feedguard" cannot '
            f'{verb} resource "{resource}" in API group "" in the namespace "{namespace}"',
            {"name": name, "kind": kind} if name else {"kind": kind},
        )

    async def _list_pods(self, request: web.Request) -> web.Response:
        denied = self._deny(request, "list", "pods", None)
        if denied is not None:
            return denied
        namespace = request.match_info["namespace"]
        selector = request.query.get("labelSelector", "")
        if selector and check_label_selector(selector):
            return status(
                400, "BadRequest", f"unable to parse requirement: invalid selector {selector!r}"
            )
        terms = parse_label_selector(selector) if selector else []
        items = []
        for (ns, _), pod in sorted(self.pods.items()):
            labels = pod["metadata"]["labels"]
            if ns == namespace and all(
                (labels.get(key) == value) == (op == "=") for key, op, value in terms
            ):
                items.append(pod)
        return web.json_response(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            }
        )

    def _int_param(self, request: web.Request, key: str, minimum: int) -> int | None:
        raw = request.query.get(key)
        if raw is None:
            return None
        value = int(raw)  # ValueError is answered 400 by the caller
        if value < minimum:
            raise ValueError(f"{key}: Invalid value: {value}: must be at least {minimum}")
        return value

    async def _pod_log(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        denied = self._deny(request, "get", "pods/log", name)
        if denied is not None:
            return denied
        pod = self.pods.get((namespace, name))
        if pod is None:
            return status(
                404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"}
            )
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = request.query.get("container")
        if container is None:
            if len(containers) > 1:
                return status(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(containers)}]",
                )
            container = containers[0]
        if container not in containers:
            return status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        try:
            since = self._int_param(request, "sinceSeconds", 1)
            tail = self._int_param(request, "tailLines", 0)
            limit = self._int_param(request, "limitBytes", 1)
        except ValueError as exc:
            return status(400, "BadRequest", f'PodLogOptions "{name}" is invalid: {exc}')
        now = self.now if self.now is not None else time.time()
        lines = [
            (at, line)
            for at, line in self.logs.get((namespace, name, container), [])
            if since is None or at >= now - since
        ]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        stamps = request.query.get("timestamps") == "true"
        text = "".join(
            (f"{rfc3339(at, nanos=True)} " if stamps else "") + line + "\n" for at, line in lines
        )
        body = text.encode()
        if limit is not None:
            body = body[:limit]
        return web.Response(body=body, content_type="text/plain")

    async def _secret(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        denied = self._deny(request, "get", "secrets", name)
        if denied is not None:
            return denied
        accept = request.headers.get("Accept", "application/json")
        wanted = [part.strip() for part in accept.split(",")]
        secret = self.secrets.get((namespace, name))
        if secret is None:
            return status(404, "NotFound", f'secrets "{name}" not found', name=name, kind="secrets")
        if self.ignore_accept_params:
            return web.json_response(secret)
        plain = False
        for media in wanted:
            kind, *rest = (p.strip() for p in media.split(";"))
            params = dict(p.partition("=")[::2] for p in rest)
            if "as" not in params:
                plain = plain or kind in ("application/json", "*/*", "")
                continue
            if (params["as"], params.get("g"), params.get("v")) in _METADATA_AS:
                return web.json_response(
                    {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": f"meta.k8s.io/{params['v']}",
                        "metadata": secret["metadata"],
                    }
                )
        if not plain:
            return status(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, "
                "application/yaml, application/vnd.kubernetes.protobuf",
            )
        return web.json_response(secret)

    def secret_reads(self) -> list[tuple[str, str]]:
        """(path, Accept) of every read of a Secret."""
        return [(path, accept) for _, path, accept, _ in self.reads if "/secrets/" in path]
