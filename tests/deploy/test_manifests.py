"""Static checks of the deployment files against the code they deploy.

The Kubernetes manifests, the Grafana dashboard and the alert rules all restate facts the code owns: settings
names, ports, shutdown grace, console scripts, metric names. These tests read both sides and fail when they
drift apart, long before a pod crash-loops on an unknown ``ANPR_*`` variable or an alert silently never fires.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import grpc
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from anpr.hotlist.settings import HotlistSettings
from anpr.ingest.settings import IngestSettings
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.settings import ServiceSettings, load_settings

Resource = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPONENTS = K8S / "components"
DASHBOARD = DEPLOY / "grafana" / "anpr-overview.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"

SETTINGS_BY_COMMAND: dict[str, type[ServiceSettings]] = {
    "anpr-ingest": IngestSettings,
    "anpr-recognize": RecognizeSettings,
    "anpr-hotlist": HotlistSettings,
}
IMAGE_REPOSITORY = "ghcr.io/anpr-suite/anpr"


# --- loading ---------------------------------------------------------------------------------------------------


def load_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document of a file; each must be a mapping."""
    documents: list[Resource] = []
    for document in yaml.safe_load_all(path.read_text()):
        if document is None:
            continue
        assert isinstance(document, dict), f"{path}: a YAML document is not a mapping"
        documents.append(document)
    return documents


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})


def is_example(path: Path) -> bool:
    return path.name.endswith((".example.yaml", ".example.yml"))


@functools.cache
def kustomization() -> Resource:
    (document,) = load_documents(K8S / "kustomization.yaml")
    return document


@functools.cache
def base_resources() -> tuple[Resource, ...]:
    """The resources `kubectl apply -k deploy/k8s` creates, in kustomization order."""
    return tuple(doc for entry in kustomization()["resources"] for doc in load_documents(K8S / entry))


@functools.cache
def example_secrets() -> tuple[Resource, ...]:
    return tuple(doc for path in yaml_files(K8S) if is_example(path) for doc in load_documents(path))


def of_kind(kind: str) -> list[Resource]:
    return [r for r in base_resources() if r["kind"] == kind]


def named(kind: str, name: str) -> Resource:
    matches = [r for r in of_kind(kind) if r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def selects(selector: Mapping[str, Any], labels: Mapping[str, str], *, empty_selects_all: bool = False) -> bool:
    """Whether a label selector (matchLabels form, or a Service's plain map) matches the labels.

    An empty selector matches everything in a NetworkPolicy's podSelector and nothing in a Service.
    """
    assert "matchExpressions" not in selector, "these tests only understand matchLabels"
    wanted: Mapping[str, Any] = selector.get("matchLabels", selector)
    if not wanted:
        return empty_selects_all
    return all(labels.get(key) == value for key, value in wanted.items())


def pod_labels(deployment: Resource) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


@dataclass(frozen=True)
class Container:
    """A service container of a Deployment, with the environment Kubernetes would give it."""

    deployment: Resource
    spec: Resource
    settings_class: type[ServiceSettings]
    literal_env: dict[str, str]  # from the ConfigMaps and plain `value`s
    secret_env: dict[str, tuple[str, str]]  # variable -> (Secret name, key)

    @property
    def name(self) -> str:
        return f"{self.deployment['metadata']['name']}/{self.spec['name']}"

    @property
    def env_names(self) -> set[str]:
        return set(self.literal_env) | set(self.secret_env)

    def port(self, name: str) -> int:
        ports = [p["containerPort"] for p in self.spec.get("ports", []) if p.get("name") == name]
        assert len(ports) == 1, f"{self.name}: expected one container port named {name!r}"
        port: int = ports[0]
        return port


def service_containers() -> list[Container]:
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind("ConfigMap")}
    containers: list[Container] = []
    for deployment in of_kind("Deployment"):
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            command = spec.get("command") or []
            assert command, (
                f"{deployment['metadata']['name']}: the container must set `command` (one image, 3 services)"
            )
            assert command[0] in SETTINGS_BY_COMMAND, f"{command[0]} is not a service console script"
            literal: dict[str, str] = {}
            secret: dict[str, tuple[str, str]] = {}
            for source in spec.get("envFrom", []):  # env entries override envFrom, so read these first
                name = source["configMapRef"]["name"]
                assert name in config_maps, f"{deployment['metadata']['name']}: no ConfigMap {name} in the base"
                literal.update({str(k): str(v) for k, v in config_maps[name].items()})
            for variable in spec.get("env", []):
                if "value" in variable:
                    literal[variable["name"]] = str(variable["value"])
                else:
                    ref = variable["valueFrom"]["secretKeyRef"]
                    secret[variable["name"]] = (ref["name"], ref["key"])
                    literal.pop(variable["name"], None)
            containers.append(Container(deployment, spec, SETTINGS_BY_COMMAND[command[0]], literal, secret))
    return containers


def loaded_settings(container: Container, tokens_file: Path) -> ServiceSettings:
    """Run the services' own settings loader on the container's environment (files swapped for local ones)."""
    prefix = str(container.settings_class.model_config["env_prefix"])
    environ = dict(container.literal_env)
    environ.update({name: "postgresql://placeholder@db.invalid/anpr" for name in container.secret_env})
    environ[prefix + "AUTH_TOKENS_FILE"] = str(tokens_file)
    return load_settings(container.settings_class, environ=environ)


@pytest.fixture
def local_tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"clients": [{"identity": "x", "roles": ["ingest-service"], "token": "t"}]}))
    return path


def test_the_base_deploys_all_three_services() -> None:
    commands = sorted(c.spec["command"][0] for c in service_containers())
    assert commands == sorted(SETTINGS_BY_COMMAND)


# --- files and kustomize ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [*yaml_files(K8S), *yaml_files(DEPLOY / "prometheus")], ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_every_document_is_a_named_resource(path: Path) -> None:
    documents = load_documents(path)
    assert documents, f"{path} holds no YAML document"
    for document in documents:
        assert isinstance(document.get("apiVersion"), str)
        assert document["apiVersion"]
        assert isinstance(document.get("kind"), str)
        assert document["kind"]
        if path.name == "kustomization.yaml":
            assert document["apiVersion"].startswith("kustomize.config.k8s.io/")
            assert document["kind"] in {"Kustomization", "Component"}
            continue
        name = document.get("metadata", {}).get("name")
        assert isinstance(name, str), f"{path}: {document['kind']} without metadata.name"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name


def test_kustomization_lists_exactly_the_base_manifests() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    for entry in listed:
        assert (K8S / entry).is_file(), f"kustomization.yaml lists missing {entry}"
    on_disk = {
        str(p.relative_to(K8S))
        for p in yaml_files(K8S)
        if COMPONENTS not in p.parents and not is_example(p) and p.name != "kustomization.yaml"
    }
    assert set(listed) == on_disk
    assert not any(is_example(Path(entry)) for entry in listed)
    assert kustomization()["namespace"] == "anpr"
    assert not kustomization().get("components"), "GPU and Prometheus Operator support stay optional"
    image = next(i for i in kustomization()["images"] if i["name"] == IMAGE_REPOSITORY)
    assert image["newTag"] == "0.1.0"


def test_resources_are_unique_and_in_the_namespace() -> None:
    keys = [(r["kind"], r["metadata"]["name"]) for r in base_resources()]
    assert len(keys) == len(set(keys)), "duplicate resources"
    assert ("Namespace", "anpr") in keys
    for resource in base_resources():
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == "anpr", resource["metadata"]["name"]


@pytest.mark.parametrize("component", sorted(p.name for p in COMPONENTS.iterdir() if p.is_dir()))
def test_components_reference_only_their_own_existing_files(component: str) -> None:
    directory = COMPONENTS / component
    (document,) = load_documents(directory / "kustomization.yaml")
    assert document["kind"] == "Component"
    referenced = list(document.get("resources", [])) + [p["path"] for p in document.get("patches", []) if "path" in p]
    for entry in referenced:
        assert (directory / entry).is_file(), f"{component}: missing {entry}"
    on_disk = {str(p.relative_to(directory)) for p in yaml_files(directory) if p.name != "kustomization.yaml"}
    assert set(referenced) == on_disk


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kustomize_builds_the_base_and_every_component(tmp_path: Path) -> None:
    def build(directory: Path) -> list[Resource]:
        result = subprocess.run(
            ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return [d for d in yaml.safe_load_all(result.stdout) if d]

    built = build(K8S)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (r["kind"], r["metadata"]["name"]) for r in base_resources()
    )
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(K8S, tmp_path)],
        "components": [os.path.relpath(p, tmp_path) for p in sorted(COMPONENTS.iterdir()) if p.is_dir()],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    with_components = build(tmp_path)
    kinds = {d["kind"] for d in with_components}
    assert "ServiceMonitor" in kinds
    recognize = next(d for d in with_components if d["kind"] == "Deployment" and "recognize" in d["metadata"]["name"])
    limits = recognize["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert str(limits["nvidia.com/gpu"]) == "1"
    for deployment in (d for d in with_components if d["kind"] == "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert "prometheus.io/scrape" not in annotations, "the operator component must not double-scrape"


# --- containers and settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_every_anpr_variable_names_a_setting_of_its_service(container: Container) -> None:
    prefix = str(container.settings_class.model_config["env_prefix"])
    fields = {prefix + name.upper() for name in container.settings_class.model_fields}
    anpr_variables = {name for name in container.env_names if name.startswith("ANPR_")}
    assert anpr_variables, f"{container.name}: no ANPR_ settings at all"
    for name in anpr_variables:
        assert name.startswith(prefix), f"{container.name}: {name} belongs to another service (prefix {prefix})"
        assert name in fields, f"{container.name}: {name} is not a field of {container.settings_class.__name__}"


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_the_container_environment_passes_the_settings_loader(container: Container, local_tokens_file: Path) -> None:
    settings = loaded_settings(container, local_tokens_file)
    assert settings.grpc_host in {"0.0.0.0", "::", "[::]"}, "a pod must listen beyond loopback"
    assert settings.metrics_host in {"0.0.0.0", "::", "[::]"}, "Prometheus scrapes from another pod"
    assert settings.log_format == "json"
    # Kubernetes' service links would add ANPR_<SERVICE>_SERVICE_HOST etc., which the loader rejects as unknown.
    assert container.deployment["spec"]["template"]["spec"].get("enableServiceLinks") is False


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_database_urls_come_from_secrets(container: Container) -> None:
    prefix = str(container.settings_class.model_config["env_prefix"])
    url_variable = prefix + "DATABASE_URL"
    assert url_variable not in container.literal_env, "a database URL holds a password: Secret only"
    if "database_url" in container.settings_class.model_fields:
        assert url_variable in container.secret_env, "without it the service would start an embedded PostgreSQL"
    secrets = {(s["metadata"]["name"], key) for s in example_secrets() for key in s.get("stringData", {})}
    for name, key in container.secret_env.values():
        assert (name, key) in secrets, f"{container.name}: Secret {name}/{key} has no *.example.yaml counterpart"


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_ports_and_grpc_probes_match_the_settings(container: Container, local_tokens_file: Path) -> None:
    settings = loaded_settings(container, local_tokens_file)
    grpc_port = container.port("grpc")
    assert settings.grpc_port == grpc_port
    assert settings.metrics_port == container.port("metrics")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container.spec, f"{container.name}: no {probe}"
        assert container.spec[probe]["grpc"]["port"] == grpc_port, f"{container.name}: {probe} asks another port"
    annotations = container.deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.metrics_port


def prestop_sleep_seconds(container: Container) -> float:
    pre_stop = container.spec["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] in {"sleep", "/bin/sleep"}, command
    assert len(command) == 2, command
    return float(command[1])


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_pod_grace_covers_drain_and_shutdown_grace(container: Container, local_tokens_file: Path) -> None:
    prefix = str(container.settings_class.model_config["env_prefix"])
    assert prefix + "SHUTDOWN_GRACE_SECONDS" in container.literal_env, "set the grace explicitly, next to the pod's"
    settings = loaded_settings(container, local_tokens_file)
    pod_grace = container.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain = prestop_sleep_seconds(container)
    assert drain > 0, "a preStop pause lets endpoint removal spread before SIGTERM"
    # The pod's grace counts from the start of preStop; leave time to close pools after server.stop(grace).
    assert pod_grace > drain + settings.shutdown_grace_seconds


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_container_is_locked_down_and_bounded(container: Container) -> None:
    pod = container.deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod.get("automountServiceAccountToken") is False
    security = container.spec["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmp = [m for m in container.spec["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1, "a read-only root needs a writable /tmp"
    assert "emptyDir" in volumes[tmp[0]["name"]]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container.spec["resources"][kind]), f"{container.name}: {kind}"
    assert "nvidia.com/gpu" not in container.spec["resources"]["limits"], "the base runs on CPU"
    repository, _, tag = container.spec["image"].rpartition(":")
    assert repository == IMAGE_REPOSITORY
    assert tag


@pytest.mark.parametrize("container", service_containers(), ids=lambda c: c.name)
def test_tokens_file_is_mounted_from_a_secret(container: Container) -> None:
    prefix = str(container.settings_class.model_config["env_prefix"])
    tokens_path = PurePosixPath(container.literal_env[prefix + "AUTH_TOKENS_FILE"])
    volumes = {v["name"]: v for v in container.deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = [m for m in container.spec["volumeMounts"] if PurePosixPath(m["mountPath"]) in tokens_path.parents]
    assert len(mounts) == 1, f"{container.name}: {tokens_path} is not under exactly one mount"
    mount = mounts[0]
    assert mount.get("readOnly") is True
    assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
    secret = volumes[mount["name"]]["secret"]
    key = str(tokens_path.relative_to(mount["mountPath"]))
    items = {i["path"]: i["key"] for i in secret.get("items", [])}
    secrets = {(s["metadata"]["name"], k) for s in example_secrets() for k in s.get("stringData", {})}
    assert (secret["secretName"], items.get(key, key)) in secrets


def test_console_scripts_exist() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for container in service_containers():
        assert container.spec["command"][0] in scripts


def test_example_secrets_are_placeholders_outside_the_kustomization() -> None:
    examples = [p for p in yaml_files(K8S) if is_example(p)]
    assert examples
    for secret in example_secrets():
        assert secret["kind"] == "Secret"
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, f"{secret['metadata']['name']}/{key} does not look like a placeholder"
    assert not [r for r in base_resources() if r["kind"] == "Secret"], "real Secrets never live in the tree"


def test_dockerfile_matches_the_deployments() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert "python:3.11-slim" in text
    assert not [i for i in instructions if i[0] == "ENTRYPOINT"], "each Deployment sets `command`"
    users = [i[1].split(":")[0] for i in instructions if i[0] == "USER"]
    run_as = {d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for d in of_kind("Deployment")}
    assert users
    assert run_as == {int(users[-1])}
    assert "[dev]" not in text


# --- Services, scaling, disruption -----------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployment_is_selected_by_its_selector_and_a_service(deployment: Resource) -> None:
    labels = pod_labels(deployment)
    assert selects(deployment["spec"]["selector"], labels)
    services = [s for s in of_kind("Service") if selects(s["spec"]["selector"], labels)]
    assert [s for s in services if s["spec"].get("clusterIP") != "None"], "no ClusterIP Service selects the pods"
    container_ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    for service in services:
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"{service['metadata']['name']}: {port['targetPort']}"


def test_every_service_selects_a_deployment() -> None:
    for service in of_kind("Service"):
        matches = [d for d in of_kind("Deployment") if selects(service["spec"]["selector"], pod_labels(d))]
        assert len(matches) == 1, service["metadata"]["name"]


def test_recognize_has_a_headless_service_for_client_side_balancing() -> None:
    recognize = pod_labels(named("Deployment", "anpr-recognize"))
    headless = [
        s
        for s in of_kind("Service")
        if s["spec"].get("clusterIP") == "None" and selects(s["spec"]["selector"], recognize)
    ]
    assert len(headless) == 1
    assert [p["name"] for p in headless[0]["spec"]["ports"]] == ["grpc"]
    assert not headless[0]["spec"].get("publishNotReadyAddresses", False), "DNS must list ready pods only"


def minimum_replicas(deployment: Resource) -> int:
    name = deployment["metadata"]["name"]
    for hpa in of_kind("HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == name:
            value: int = hpa["spec"].get("minReplicas", 1)
            return value
    replicas: int = deployment["spec"].get("replicas", 1)
    return replicas


def test_autoscalers_target_deployments_that_leave_replicas_to_them() -> None:
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind("HorizontalPodAutoscaler")}
    assert {"anpr-recognize", "anpr-ingest"} <= targets
    for hpa in of_kind("HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        deployment = named(ref["kind"], ref["name"])
        assert "replicas" not in deployment["spec"], f"{ref['name']}: `kubectl apply` would undo the autoscaler"
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_disruption_budget_protects_without_blocking_drains(deployment: Resource) -> None:
    budgets = [p for p in of_kind("PodDisruptionBudget") if selects(p["spec"]["selector"], pod_labels(deployment))]
    assert len(budgets) == 1
    spec = budgets[0]["spec"]
    replicas = minimum_replicas(deployment)
    assert replicas >= 2, "one replica cannot survive a voluntary disruption"
    if "maxUnavailable" in spec:
        assert 1 <= int(spec["maxUnavailable"]) < replicas
    else:
        assert 1 <= int(spec["minAvailable"]) < replicas


# --- network policy --------------------------------------------------------------------------------------------


def rules_reaching(deployment: Resource, port_name: str) -> list[Resource]:
    """Ingress rules of policies selecting the deployment's pods that open the named port."""
    rules: list[Resource] = []
    for policy in of_kind("NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], pod_labels(deployment), empty_selects_all=True):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is None or any(p.get("port") == port_name for p in ports):
                rules.append(rule)
    return rules


def test_ingress_is_denied_by_default() -> None:
    deny = [p for p in of_kind("NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert deny[0]["spec"]["policyTypes"] == ["Ingress"]
    assert not deny[0]["spec"].get("ingress")


def test_network_policies_name_existing_pods_and_ports() -> None:
    deployments = of_kind("Deployment")
    for policy in of_kind("NetworkPolicy"):
        if policy["spec"]["podSelector"] == {}:
            continue
        selected = [d for d in deployments if selects(policy["spec"]["podSelector"], pod_labels(d))]
        assert len(selected) == 1, policy["metadata"]["name"]
        ports = {p["name"] for c in selected[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for rule in policy["spec"]["ingress"]:
            for port in rule.get("ports", []):
                assert port["port"] in ports, f"{policy['metadata']['name']}: no port {port['port']}"


def is_ingest_only(peer: Resource) -> bool:
    ingest = pod_labels(named("Deployment", "anpr-ingest"))
    return set(peer) == {"podSelector"} and selects(peer["podSelector"], ingest)


def test_only_ingest_reaches_recognize() -> None:
    rules = rules_reaching(named("Deployment", "anpr-recognize"), "grpc")
    assert rules
    for rule in rules:
        assert rule.get("from"), "an ingress rule without `from` admits everyone"
        assert all(is_ingest_only(peer) for peer in rule["from"]), rule


def test_ingest_reaches_hotlist_and_strangers_do_not() -> None:
    rules = rules_reaching(named("Deployment", "anpr-hotlist"), "grpc")
    peers = [peer for rule in rules for peer in rule.get("from", [])]
    assert all(rule.get("from") for rule in rules), "an ingress rule without `from` admits everyone"
    assert any(is_ingest_only(peer) for peer in peers)
    for peer in peers:
        assert "ipBlock" not in peer
        # Other clients must carry an explicit label: never a whole namespace.
        assert "podSelector" in peer, peer
        assert peer["podSelector"].get("matchLabels"), peer


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_prometheus_may_scrape_metrics(deployment: Resource) -> None:
    rules = rules_reaching(deployment, "metrics")
    peers = [peer for rule in rules for peer in rule.get("from", [])]
    assert any("namespaceSelector" in peer for peer in peers)


# --- optional components ---------------------------------------------------------------------------------------


def test_gpu_component_patches_the_cpu_recognize_deployment() -> None:
    (patch,) = load_documents(COMPONENTS / "gpu" / "recognize-gpu.yaml")
    base = named("Deployment", patch["metadata"]["name"])
    assert base["spec"]["template"]["spec"]["containers"][0]["command"] == ["anpr-recognize"]
    pod = patch["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] in {c["name"] for c in base["spec"]["template"]["spec"]["containers"]}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_service_monitor_scrapes_each_metrics_service_once() -> None:
    (monitor,) = load_documents(COMPONENTS / "prometheus-operator" / "servicemonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    selected = {
        s["metadata"]["name"]
        for s in of_kind("Service")
        if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    }
    with_metrics = {
        s["metadata"]["name"] for s in of_kind("Service") if any(p["name"] == "metrics" for p in s["spec"]["ports"])
    }
    assert selected == with_metrics
    assert len(with_metrics) == 3
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


# --- metrics in the dashboard and the alerts -------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
}
_SERVICE_MODULES = ("anpr.ingest.server", "anpr.recognize.server", "anpr.hotlist.server")


@functools.cache
def exported_series() -> frozenset[str]:
    """Every series name the services can export, read from the prometheus_client collectors in the code.

    The runtime's metrics module plus whatever the services' entry points import (metrics that later issues add
    are picked up wherever they are defined), and ``up``, which Prometheus adds per target.
    """
    importlib.import_module("anpr.runtime.metrics")
    for entry_point in _SERVICE_MODULES:
        importlib.import_module(entry_point)
    names = {"up"}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("anpr.") or module_name.startswith("anpr.api"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, MetricWrapperBase):
                for family in value.describe():
                    names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)


_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_PROMQL_WORDS |= {"offset", "inf", "nan", "start", "end"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, label names, strings or Grafana variables)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+(?::\w+)?\}?", " ", text)
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group().lower() not in _PROMQL_WORDS:
            names.add(match.group())
    return names


def test_promql_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (grpc_service, le) (rate(a_seconds_bucket{grpc_type="unary", x=~"b|c"}'
        "[$__rate_interval]))) / ignoring (code) group_left sum without (pod) (b_total offset 5m) > 1e3 and on() up"
    )
    assert promql_metric_names(expr) == {"a_seconds_bucket", "b_total", "up"}
    assert promql_metric_names("count by (service, version) (anpr_build_info)") == {"anpr_build_info"}


def test_known_series_come_from_the_code() -> None:
    series = exported_series()
    assert {"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "anpr_build_info"} <= series
    assert "grpc_server_handled" not in series
    assert "grpc_server_handling_seconds" not in series


@functools.cache
def dashboard() -> Resource:
    document = json.loads(DASHBOARD.read_text())
    assert isinstance(document, dict)
    return document


def dashboard_panels() -> Iterator[Resource]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def dashboard_queries() -> list[str]:
    return [t["expr"] for panel in dashboard_panels() for t in panel.get("targets", [])]


def variable_metric_names() -> set[str]:
    names: set[str] = set()
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\(\s*(?:([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,\s*)?\w+\s*\)", query)
        assert match, f"unsupported variable query {query!r}"
        if match.group(1):
            names.add(match.group(1))
    return names


def test_dashboard_uses_only_exported_metrics() -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_queries())) | variable_metric_names()
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "anpr_auth_failures_total",
        "anpr_build_info",
    } <= used
    assert used <= exported_series(), f"not exported by the code: {sorted(used - exported_series())}"


def test_dashboard_is_portable_across_prometheus_datasources() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, variable["name"]
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids))
    builtins = {"__rate_interval", "__interval", "__range"}
    for panel in dashboard_panels():
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for variable in re.findall(r"\$\{?(\w+)", target["expr"]):
                assert variable in variables or variable in builtins, f"{panel['title']}: ${variable}"


@functools.cache
def alert_rules() -> tuple[Resource, ...]:
    (document,) = load_documents(ALERTS)
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    return tuple(rule for group in document["spec"]["groups"] for rule in group["rules"])


def test_alert_rules_are_complete() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
    assert any(re.search(r"\bup\s*(\{[^}]*\})?\s*==\s*0", rule["expr"]) for rule in alert_rules()), (
        "no target-down alert"
    )


def test_alerts_use_only_exported_metrics() -> None:
    used = set().union(*(promql_metric_names(rule["expr"]) for rule in alert_rules()))
    assert {
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "anpr_auth_failures_total",
        "up",
    } <= used
    assert used <= exported_series(), f"not exported by the code: {sorted(used - exported_series())}"


def test_status_codes_in_queries_are_grpc_names() -> None:
    """The interceptor records ``grpc.StatusCode`` names (INTERNAL), not go-grpc-prometheus's CamelCase."""
    valid = {code.name for code in grpc.StatusCode}
    texts = [*dashboard_queries(), *(rule["expr"] for rule in alert_rules())]
    found = [m for text in texts for m in re.findall(r'grpc_code\s*[!=]~?\s*"([^"]*)"', text)]
    assert found
    for value in found:
        assert set(value.split("|")) <= valid, value
