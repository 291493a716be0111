"""deploy/: both kustomize overlays rendered by kubectl and checked without a cluster.

Every built-in object against the Kubernetes OpenAPI schemas, the Prometheus
Operator objects against their CRDs' schemas, and what ties the objects to the
services: probes, ports, secrets, RBAC, rules, dashboards.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from feedguard.core.catalog import load_catalog
from feedguard.exporter.config import load_config as load_exporter_config
from feedguard.responder.config import load_config as load_responder_config

from .support.commands import Commands
from .support.manifests import (
    OVERLAYS,
    REPO,
    Doc,
    containers,
    crd_errors,
    crd_schemas,
    env,
    of_kind,
    one,
    render,
    validate_builtin,
)
from .support.services import require_binary

CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}
BUILTIN_KINDS = {
    "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "Deployment",
    "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget",
}  # fmt: skip
PARAMS = yaml.safe_load((REPO / "rules/generator/thresholds.yml").read_text())["params"]
# The runbook's aurum-api-health ConfigMap: initialDelay, timeout, period, failureThreshold.
SEED_TIMINGS = {
    "livenessProbe": (30, 10, 30, 3),
    "readinessProbe": (5, 5, 10, 3),
    "startupProbe": (10, 30, 10, 30),
}
# What each probe checks, on purpose (docs/deploy.md#probes): the exporter's readiness
# is /healthz, not /readyz, so Redis down stays "Redis unreadable", not "exporter absent".
PROBE_PATHS = {
    "feedguard-exporter": {
        "livenessProbe": "/healthz",
        "readinessProbe": "/healthz",
        "startupProbe": "/healthz",
    },
    "feedguard-responder": {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    },
}
# Everything the service accounts may do: (apiGroup, resource, resourceName) → verbs.
# A new grant (pods/log, a Secret...) is one more line here, with the reason.
ALLOWED_GRANTS: dict[tuple[str, str, str], set[str]] = {
    # throttle_api (runbook 3.1): read and patch the API's rate limit.
    ("", "configmaps", "aurum-api-config"): {"get", "patch"},
    # Evidence and credential metrics (runbook 4): the catalog's Secrets, metadata only.
    **{
        ("", "secrets", secret.name): {"get"}
        for _, secret in load_catalog(REPO / "config" / "external_providers.yml").credentials()
    },
}
# Rules that cannot name their objects (pod names change): the evidence's reads.
ALLOWED_UNNAMED: dict[tuple[str, str], set[str]] = {
    ("", "pods"): {"list"},
    ("", "pods/log"): {"get"},
}
LOADERS = {
    "feedguard-exporter": load_exporter_config,
    "feedguard-responder": load_responder_config,
}


@pytest.fixture(params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    return render(request.param)


def test_every_object_is_of_a_known_kind(docs: tuple[Doc, ...]) -> None:
    assert {doc["kind"] for doc in docs} <= BUILTIN_KINDS | CRD_KINDS
    assert {doc["metadata"].get("namespace") for doc in docs} == {"aurum-dev"}


def test_builtin_objects_match_the_kubernetes_schemas(docs: tuple[Doc, ...]) -> None:
    checked = [doc for doc in docs if doc["kind"] in BUILTIN_KINDS]
    for doc in checked:
        validate_builtin(doc)
    assert {"Deployment", "Service", "NetworkPolicy", "Role"} <= {d["kind"] for d in checked}


def test_operator_objects_match_their_crd_schemas(docs: tuple[Doc, ...]) -> None:
    checked = [doc for doc in docs if doc["kind"] in CRD_KINDS]
    assert {doc["kind"] for doc in checked} == CRD_KINDS
    for doc in checked:
        assert crd_errors(doc) == [], doc["kind"]


def test_the_validators_reject_a_misspelt_field() -> None:
    docs = render("single")
    deployment = copy.deepcopy(one(docs, "Deployment", "feedguard-exporter"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(deployment)
    monitor = copy.deepcopy(one(docs, "ServiceMonitor", "feedguard-exporter"))
    monitor["spec"]["endpoints"][0]["prot"] = monitor["spec"]["endpoints"][0].pop("port")
    assert any("'prot' was unexpected" in e for e in crd_errors(monitor))
    assert set(crd_schemas()) == {
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
    }


def test_probes_carry_the_seed_timings_and_the_chosen_paths(docs: tuple[Doc, ...]) -> None:
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        (container,) = containers(deployment)
        ports = {port["name"] for port in container["ports"]}
        for kind, timings in SEED_TIMINGS.items():
            probe = container[kind]
            got = tuple(
                probe[k]
                for k in (
                    "initialDelaySeconds",
                    "timeoutSeconds",
                    "periodSeconds",
                    "failureThreshold",
                )
            )
            assert got == timings, f"{name} {kind}"
            assert probe["httpGet"]["path"] == PROBE_PATHS[name][kind], f"{name} {kind}"
            assert probe["httpGet"]["port"] in ports


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_probe_paths_answer_on_the_running_services(installed_services: Commands) -> None:
    """The services as the pods run them; Redis unreachable, as during a Redis outage."""
    for name, paths in PROBE_PATHS.items():
        service = getattr(installed_services, name.removeprefix("feedguard-"))
        for path in set(paths.values()):
            status, body = _get(service.url + path)
            assert status == 200, f"{name} {path}: {status} {body}"
    # Ready, and still saying why the freshness series are missing.
    _, metrics = _get(installed_services.exporter.url + "/metrics")
    assert 'external_exporter_collector_up{collector="redis"} 0.0' in metrics
    # /readyz is the one the exporter's readiness does not use: it fails here.
    status, _ = _get(installed_services.exporter.url + "/readyz")
    assert status == 503


def test_security_context_and_resources(docs: tuple[Doc, ...]) -> None:
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        writable = {
            v["name"] for v in pod["volumes"] if "emptyDir" in v or "persistentVolumeClaim" in v
        }
        for container in containers(deployment):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert set(container["resources"]) == {"requests", "limits"}
            for mount in container["volumeMounts"]:
                assert mount.get("readOnly", False) is (mount["name"] not in writable), mount


def _file_settings(config: Any, prefix: str = "") -> dict[str, str]:
    """Every ``*_file`` setting with a value, by dotted path (dataclasses or models)."""
    found: dict[str, str] = {}
    values = vars(config) if hasattr(config, "__dict__") else {}
    for key, value in values.items():
        if key.startswith("_"):
            continue
        if key.endswith("_file") and isinstance(value, str) and key != "catalog_file":
            found[prefix + key] = value
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            found.update(_file_settings(value, f"{prefix}{key}."))
    return found


def _rooted(path: str, root: Path) -> str:
    return str(root / PurePosixPath(path).relative_to("/"))


def test_every_mounted_secret_key_is_a_file_setting_the_service_reads(
    docs: tuple[Doc, ...], tmp_path: Path
) -> None:
    """Loads each service's config with the Deployment's args and env, secrets laid out
    under tmp_path as the pod would see them: every key lands in a ``*_file`` setting."""
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = containers(deployment)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted: set[str] = set()
        for mount in container["volumeMounts"]:
            secret = volumes[mount["name"]].get("secret")
            if secret is None:
                continue
            for item in secret["items"]:
                path = f"{mount['mountPath']}/{item['path']}"
                mounted.add(path)
                target = Path(_rooted(path, tmp_path))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f"{secret['secretName']}/{item['key']}\n")
        assert mounted, name
        environ = {
            key: _rooted(value, tmp_path) if value in mounted else value
            for key, value in env(container).items()
        }
        args = container["args"]
        config_file = REPO / "deploy/base/config" / Path(args[args.index("--config") + 1]).name
        config = LOADERS[name](config_file, environ)
        settings = _file_settings(config)
        assert sorted(settings.values()) == sorted(_rooted(p, tmp_path) for p in mounted), name
        for setting, path in settings.items():
            # The env variable that set it is the setting's name, upper case.
            (variable,) = (k for k, v in environ.items() if v == path)
            assert variable == "FEEDGUARD_" + setting.replace(".", "_").upper(), variable


def test_alertmanager_sends_the_token_the_responder_checks(docs: tuple[Doc, ...]) -> None:
    (config,) = of_kind(docs, "AlertmanagerConfig")
    (receiver,) = config["spec"]["receivers"]
    assert config["spec"]["route"]["receiver"] == receiver["name"]
    assert {"name": "team", "value": PARAMS["team"]} in config["spec"]["route"]["matchers"]
    (hook,) = receiver["webhookConfigs"]
    service = one(docs, "Service", "feedguard-responder")
    (port,) = service["spec"]["ports"]
    namespace = service["metadata"]["namespace"]
    assert hook["url"] == (
        f"http://feedguard-responder.{namespace}.svc:{port['port']}/webhook/alertmanager"
    )
    assert hook["sendResolved"] is True
    credentials = hook["httpConfig"]["authorization"]["credentials"]
    deployment = one(docs, "Deployment", "feedguard-responder")
    (container,) = containers(deployment)
    token_file = env(container)["FEEDGUARD_WEBHOOK_BEARER_TOKEN_FILE"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = (m for m in container["volumeMounts"] if token_file.startswith(m["mountPath"]))
    secret = volumes[mount["name"]]["secret"]
    (item,) = (i for i in secret["items"] if token_file.endswith("/" + i["path"]))
    assert credentials == {"name": secret["secretName"], "key": item["key"]}


def test_service_monitors_select_their_service_and_named_port(docs: tuple[Doc, ...]) -> None:
    jobs = {PARAMS["exporter_job"], PARAMS["responder_job"]}
    monitors = of_kind(docs, "ServiceMonitor")
    assert len(monitors) == 2
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        (service,) = (
            s
            for s in of_kind(docs, "Service")
            if wanted.items() <= s["metadata"].get("labels", {}).items()
        )
        # No jobLabel: Prometheus' job is the Service's name, what the rules select.
        assert "jobLabel" not in monitor["spec"]
        assert service["metadata"]["name"] in jobs
        port_names = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
        # ...and the Service reaches a container port of that name on the Deployment's pods.
        (deployment,) = (
            d
            for d in of_kind(docs, "Deployment")
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        )
        (container,) = containers(deployment)
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named
            listen = container["args"][container["args"].index("--listen") + 1]
            assert listen == f"0.0.0.0:{named[port['targetPort']]}"
        jobs.discard(service["metadata"]["name"])
    assert jobs == set()


def test_network_policies_admit_only_prometheus_and_alertmanager(docs: tuple[Doc, ...]) -> None:
    expected = {
        "feedguard-exporter": {"prometheus"},
        "feedguard-responder": {"prometheus", "alertmanager"},
    }
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (policy,) = (
            p
            for p in of_kind(docs, "NetworkPolicy")
            if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        )
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        (container,) = containers(deployment)
        ports = {p["containerPort"] for p in container["ports"]}
        admitted = set()
        for rule in policy["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= ports
            for peer in rule["from"]:
                admitted.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
        assert admitted == expected[name]


def test_rbac_grants_nothing_beyond_the_allowed_grants(docs: tuple[Doc, ...]) -> None:
    assert not of_kind(docs, "ClusterRole")
    assert not of_kind(docs, "ClusterRoleBinding")
    for role in of_kind(docs, "Role"):
        for rule in role["rules"]:
            # resourceNames cannot restrict list, watch or create: every rule names its
            # objects, except the evidence's reads of pods and their logs.
            if not rule.get("resourceNames"):
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        allowed = ALLOWED_UNNAMED.get((group, resource), set())
                        assert set(rule["verbs"]) <= allowed, (group, resource)
                continue
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for name in rule["resourceNames"]:
                        allowed = ALLOWED_GRANTS.get((group, resource, name), set())
                        assert set(rule["verbs"]) <= allowed, (group, resource, name)
    accounts = {d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")}
    for binding in of_kind(docs, "RoleBinding"):
        one(docs, "Role", binding["roleRef"]["name"])
        assert {s["name"] for s in binding["subjects"]} <= accounts
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        if pod.get("serviceAccountName") not in accounts:
            assert pod["automountServiceAccountToken"] is False, deployment["metadata"]["name"]


def test_prometheus_rule_holds_the_rule_files_and_passes_promtool(tmp_path: Path) -> None:
    (rule,) = of_kind(render("single"), "PrometheusRule")
    files = sorted((REPO / "rules").glob("*.rules.yml"), key=lambda p: "alerts" in p.name)
    groups = [g for path in files for g in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == groups
    extracted = tmp_path / "prometheus-rule.rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        [require_binary("promtool"), "check", "rules", str(extracted)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_configmaps_for_the_grafana_sidecar() -> None:
    maps = [
        m
        for m in of_kind(render("single"), "ConfigMap")
        if m["metadata"]["name"].startswith("feedguard-dashboard-")
    ]
    boards = {}
    for configmap in maps:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        boards.update(configmap["data"])
    expected = {p.name: p.read_text() for p in (REPO / "grafana/dashboards").glob("*.json")}
    assert boards == expected
    assert all(json.loads(text)["uid"] for text in boards.values())


def test_overlay_single_runs_one_responder_on_a_volume() -> None:
    docs = render("single")
    deployment = one(docs, "Deployment", "feedguard-responder")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = containers(deployment)
    variables = env(container)
    assert variables["FEEDGUARD_STORE_BACKEND"] == "sqlite"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = (
        m
        for m in container["volumeMounts"]
        if variables["FEEDGUARD_STORE_SQLITE_PATH"].startswith(m["mountPath"] + "/")
    )
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    one(docs, "PersistentVolumeClaim", claim)


def test_overlay_ha_runs_responders_on_an_existing_redis() -> None:
    docs = render("ha")
    deployment = one(docs, "Deployment", "feedguard-responder")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {
        "kubernetes.io/hostname"
    }
    (container,) = containers(deployment)
    variables = env(container)
    assert variables["FEEDGUARD_STORE_BACKEND"] == "redis"
    assert variables["FEEDGUARD_REDIS_URL"].startswith("redis://")
    assert "FEEDGUARD_REDIS_PASSWORD_FILE" in variables
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert any(
        p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for p in of_kind(docs, "PodDisruptionBudget")
    )
    # Redis is the platform's: nothing here runs it, no volume is claimed.
    assert not of_kind(docs, "PersistentVolumeClaim")
    assert all("redis" not in d["metadata"]["name"] for d in of_kind(docs, "Deployment"))


def test_config_copies_for_kustomize_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "deploy/generate.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
