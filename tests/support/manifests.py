"""Render deploy/overlays/* with ``kubectl kustomize`` and validate the objects offline."""

from __future__ import annotations

import copy
import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from .services import require_binary

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("single", "ha")
# The Kubernetes versions the manifests are checked against: the oldest they need
# (policy/v1 PDBs, seccompProfile and topologySpreadConstraints are GA there) and the
# newest kubernetes-validate knows (an API removed since would fail there).
KUBERNETES_VERSIONS = ("1.25", kubernetes_validate.latest_version())
Doc = dict[str, Any]


class _Loader(yaml.SafeLoader):
    """kustomize prints a bare ``=`` (a YAML 1.1 "value" key) where a string "=" was."""


_Loader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)  # type: ignore[arg-type]  # a scalar node, read as str


@functools.cache
def render(overlay: str) -> tuple[Doc, ...]:
    """``kubectl kustomize deploy/overlays/<overlay>``, once per test session."""
    kubectl = require_binary("kubectl")
    result = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.load_all(result.stdout, Loader=_Loader) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    (found,) = (d for d in of_kind(docs, kind) if d["metadata"]["name"] == name)
    return found


def validate_builtin(doc: Doc) -> None:
    """The Kubernetes OpenAPI schemas of the kind; strict: an unknown field is an error."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


# --- Prometheus Operator CRDs -------------------------------------------------------


def _strict(schema: Any) -> None:
    # The models allow unknown fields; the API server prunes them silently, which
    # would hide a misspelt field: reject them instead.
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Doc]:
    """(apiVersion, kind) → JSON Schema, from the models of the operator's v0.80.1 CRDs."""
    from cloudcoil.models.prometheus_operator import v1, v1alpha1

    models = {
        ("monitoring.coreos.com/v1", "ServiceMonitor"): v1.ServiceMonitor,
        ("monitoring.coreos.com/v1", "PrometheusRule"): v1.PrometheusRule,
        ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): v1alpha1.AlertmanagerConfig,
    }
    schemas = {}
    for key, model in models.items():
        schema = copy.deepcopy(model.model_json_schema(by_alias=True))
        _strict(schema)
        schemas[key] = schema
    return schemas


def crd_errors(doc: Doc) -> list[str]:
    schema = crd_schemas()[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def containers(deployment: Doc) -> Iterator[Doc]:
    yield from deployment["spec"]["template"]["spec"]["containers"]


def env(container: Doc) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}
