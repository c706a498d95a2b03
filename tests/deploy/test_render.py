"""Render every Kubernetes overlay and check it against the schemas and against the code it deploys.

``kubectl kustomize`` builds deploy/k8s/overlays/{dev,prod}; every object must validate against the Kubernetes
JSON schemas (kubernetes-validate, strict: unknown fields fail) of the oldest and newest supported releases, and
every custom resource against its operator's model from the kubernetes-models npm packages (tests/deploy/crd_models:
the generated JSON schema, and TypeScript's check that refuses unknown fields). Then each workload's environment, built
from the ConfigMaps and Secrets of the same render (prod's operator-supplied Secrets from their *.example.yaml,
Secrets that cert-manager and CloudNativePG write from the objects that make them), goes through the service's own
settings loader with every mounted file in place, and every target address must name a Service of the render.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

from anpr.hotlist.settings import HotlistSettings
from anpr.ingest.settings import IngestSettings
from anpr.recognize.settings import RecognizeSettings
from anpr.runtime.auth import parse_tokens, token_digest
from anpr.runtime.settings import ServiceSettings, load_settings

Resource = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
CRD_MODELS = Path(__file__).resolve().parent / "crd_models"
KUBERNETES_VERSIONS = ("1.30", "1.37")
NAMESPACE = "anpr"
CLUSTER_DOMAIN = "cluster.local"

SETTINGS_BY_COMMAND: dict[str, type[ServiceSettings]] = {
    "anpr-ingest": IngestSettings,
    "anpr-recognize": RecognizeSettings,
    "anpr-hotlist": HotlistSettings,
}
IMAGES = {
    "anpr-ingest": "ghcr.io/anpr-suite/anpr-ingest",
    "anpr-recognize": "ghcr.io/anpr-suite/anpr-recognize",
    "anpr-hotlist": "ghcr.io/anpr-suite/anpr-hotlist",
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) renders the overlays"
)


# --- rendering -------------------------------------------------------------------------------------------------


@functools.cache
def render(overlay: str) -> tuple[Resource, ...]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def load_documents(path: Path) -> list[Resource]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@functools.cache
def example_secrets(overlay: str) -> tuple[Resource, ...]:
    """The Secrets the operator creates for an overlay, as documented by its *.example.yaml files."""
    directory = K8S / "overlays" / overlay
    return tuple(d for p in sorted(directory.glob("*.example.yaml")) for d in load_documents(p))


def of_kind(overlay: str, *kinds: str) -> list[Resource]:
    return [r for r in render(overlay) if r["kind"] in kinds]


def named(overlay: str, kind: str, name: str) -> Resource:
    matches = [r for r in of_kind(overlay, kind) if r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{overlay}: expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def secret_data(overlay: str) -> dict[str, dict[str, str]]:
    """Secret name -> key -> value, for every Secret a pod of the overlay can find at run time."""
    secrets: dict[str, dict[str, str]] = {}
    for secret in [*of_kind(overlay, "Secret"), *example_secrets(overlay)]:
        values = dict(secret.get("stringData", {}))
        for key, encoded in secret.get("data", {}).items():
            values[key] = base64.b64decode(encoded).decode()
        secrets[secret["metadata"]["name"]] = values
    # Written by cert-manager for each Certificate, and by CloudNativePG for each Cluster (its CA).
    for certificate in of_kind(overlay, "Certificate"):
        secrets[certificate["spec"]["secretName"]] = {"tls.crt": "PEM", "tls.key": "PEM", "ca.crt": "PEM"}
    for cluster in of_kind(overlay, "Cluster"):
        secrets[f"{cluster['metadata']['name']}-ca"] = {"ca.crt": "PEM", "ca.key": "PEM"}
    return secrets


def selects(selector: Mapping[str, Any], labels: Mapping[str, str], *, empty_selects_all: bool = False) -> bool:
    """Whether a matchLabels selector (or a Service's plain map) matches; an empty one matches all or nothing."""
    assert "matchExpressions" not in selector, "these tests only understand matchLabels"
    wanted: Mapping[str, Any] = selector.get("matchLabels", selector)
    if not wanted:
        return empty_selects_all
    return all(labels.get(key) == value for key, value in wanted.items())


def pod_labels(workload: Resource) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def pod_specs(overlay: str) -> Iterator[tuple[Resource, Resource]]:
    for workload in of_kind(overlay, *WORKLOAD_KINDS):
        yield workload, workload["spec"]["template"]["spec"]


# --- schemas ---------------------------------------------------------------------------------------------------


@functools.cache
def is_custom_resource(api_version: str, kind: str) -> bool:
    """Whether the Kubernetes schemas lack the kind, so that an operator's CRD must define it."""
    probe = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "probe"}}
    try:
        kubernetes_validate.validate(probe, KUBERNETES_VERSIONS[-1], strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return True
    except kubernetes_validate.ValidationError:
        pass  # a known kind; this empty probe only lacks its required fields
    return False


def custom_resources(overlay: str) -> list[Resource]:
    return [r for r in render(overlay) if is_custom_resource(r["apiVersion"], r["kind"])]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    for resource in render(overlay):
        where = f"{overlay}: {resource['kind']}/{resource['metadata']['name']}"
        if is_custom_resource(resource["apiVersion"], resource["kind"]):
            continue  # test_custom_resources_validate_against_their_models
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where} is invalid in Kubernetes {version}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{where}: Kubernetes {version} has no {resource['apiVersion']} {resource['kind']}")


def crd_models_missing() -> str | None:
    """Why the CRD model packages cannot run here, or None; an install of other versions counts as missing."""
    install = "npm ci --prefix tests/deploy/crd_models (tools/setup.sh runs it where npm exists)"
    if shutil.which("node") is None:
        return f"node is not installed (Debian/Ubuntu: apt-get install nodejs npm), then {install}"
    wanted: dict[str, str] = json.loads((CRD_MODELS / "package.json").read_text())["dependencies"]
    for package, version in wanted.items():
        manifest = CRD_MODELS / "node_modules" / package / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text())["version"] != version:
            return f"{package} {version} is not installed in {CRD_MODELS.relative_to(ROOT)}: {install}"
    return None


def validate_with_crd_models(resources: Sequence[Resource]) -> list[dict[str, Any]]:
    """One result per object from tests/deploy/crd_models/validate.js: the packages modelling it and its errors."""
    missing = crd_models_missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        ["node", str(CRD_MODELS / "validate.js")],
        input=json.dumps(list(resources)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    results = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["apiVersion"], r["kind"]) for r in results] == [(r["apiVersion"], r["kind"]) for r in resources]
    return results


@functools.cache
def crd_model_results() -> dict[str, list[dict[str, Any]]]:
    """Every overlay's custom resources through the models, in one run (the type check takes seconds)."""
    resources = {overlay: custom_resources(overlay) for overlay in OVERLAYS}
    results = validate_with_crd_models([r for overlay in OVERLAYS for r in resources[overlay]])
    split: dict[str, list[dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        split[overlay], results = results[: len(resources[overlay])], results[len(resources[overlay]) :]
    return split


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_their_models(overlay: str) -> None:
    for result in crd_model_results()[overlay]:
        where = f"{overlay}: {result['apiVersion']} {result['kind']}/{result['name']}"
        assert result["models"], f"{where}: no CRD model; add its package to tests/deploy/crd_models"
        assert not result["errors"], f"{where}: " + "; ".join(result["errors"])


def test_prod_holds_the_operators_custom_resources() -> None:
    kinds = {(r["apiVersion"], r["kind"]) for r in custom_resources("prod")}
    assert {
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("postgresql.cnpg.io/v1", "ScheduledBackup"),
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("cert-manager.io/v1", "Certificate"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    } <= kinds


def test_crd_models_refuse_mistyped_and_unknown_fields_and_unmodelled_kinds() -> None:
    originals = custom_resources("prod")
    mistyped = [{**copy.deepcopy(r), "spec": "not-an-object"} for r in originals]
    unknown = [copy.deepcopy(r) for r in originals]
    for resource in unknown:
        resource["spec"]["anprUnknownField"] = True
    (cluster,) = [copy.deepcopy(r) for r in originals if r["kind"] == "Cluster"]
    cluster["spec"]["instances"] = "three"
    widget = {"apiVersion": "widgets.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    results = validate_with_crd_models([*originals, *mistyped, *unknown, cluster, widget])
    n = len(originals)
    assert n >= 5
    assert all(r["models"] and not r["errors"] for r in results[:n])
    for result in results[n : 2 * n]:
        assert any(e.startswith("data/spec must be object") for e in result["errors"]), result
    for result in results[2 * n : 3 * n]:
        assert any(e.startswith("data/spec/anprUnknownField ") for e in result["errors"]), result
    assert "data/spec/instances must be integer" in results[3 * n]["errors"]
    assert results[3 * n + 1]["models"] == []


# --- workloads and their environment ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    """A service container of an overlay's render, with the environment and files Kubernetes would give it."""

    overlay: str
    workload: Resource
    spec: Resource
    settings_class: type[ServiceSettings]

    @property
    def name(self) -> str:
        return f"{self.overlay}:{self.workload['metadata']['name']}/{self.spec['name']}"

    @property
    def pod(self) -> Resource:
        pod: Resource = self.workload["spec"]["template"]["spec"]
        return pod

    @property
    def prefix(self) -> str:
        return str(self.settings_class.model_config["env_prefix"])

    def environment(self) -> dict[str, str]:
        """The variables the container starts with; a reference to a missing ConfigMap or Secret key fails."""
        config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(self.overlay, "ConfigMap")}
        secrets = secret_data(self.overlay)
        environ: dict[str, str] = {}
        for source in self.spec.get("envFrom", []):  # env entries override envFrom, so read these first
            name = source["configMapRef"]["name"]
            assert name in config_maps, f"{self.name}: no ConfigMap {name} in the render"
            environ.update({str(k): str(v) for k, v in config_maps[name].items()})
        for variable in self.spec.get("env", []):
            if "value" in variable:
                environ[variable["name"]] = str(variable["value"])
                continue
            ref = variable["valueFrom"]["secretKeyRef"]
            assert not ref.get("optional"), f"{self.name}: {variable['name']} must not be optional"
            assert ref["name"] in secrets, f"{self.name}: Secret {ref['name']} is neither rendered nor documented"
            assert ref["key"] in secrets[ref["name"]], f"{self.name}: Secret {ref['name']} has no key {ref['key']}"
            environ[variable["name"]] = secrets[ref["name"]][ref["key"]]
        return environ

    def mounted_file(self, path: PurePosixPath) -> str:
        """The content the pod would see at ``path``, from the Secret or ConfigMap volume mounted above it."""
        mounts = [m for m in self.spec.get("volumeMounts", []) if PurePosixPath(m["mountPath"]) in path.parents]
        assert len(mounts) == 1, f"{self.name}: {path} is not under exactly one mount"
        mount = mounts[0]
        assert mount.get("readOnly") is True, f"{self.name}: {mount['mountPath']} should be read-only"
        assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
        volume = next(v for v in self.pod["volumes"] if v["name"] == mount["name"])
        relative = str(path.relative_to(mount["mountPath"]))
        if "secret" in volume:
            name, values = volume["secret"]["secretName"], secret_data(self.overlay)
            items = volume["secret"].get("items")
        else:
            name = volume["configMap"]["name"]
            values = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(self.overlay, "ConfigMap")}
            items = volume["configMap"].get("items")
        assert name in values, f"{self.name}: volume {volume['name']} names {name}, which nothing provides"
        key = {i["path"]: i["key"] for i in items}.get(relative) if items else relative
        assert key is not None, f"{self.name}: no item of {name} is mounted at {path}"
        assert key in values[name], f"{self.name}: {name} has no key {key}"
        return values[name][key]

    def settings(self, tmp_path: Path) -> ServiceSettings:
        """Load the container's environment with the services' own loader, each mounted file copied locally."""
        environ = self.environment()
        for variable, value in list(environ.items()):
            field = variable.removeprefix(self.prefix).lower()
            if variable.startswith(self.prefix) and field.endswith(("_file", "_dir")) and value.startswith("/"):
                if field.endswith("_dir"):
                    continue
                local = tmp_path / hashlib.sha256(variable.encode()).hexdigest()[:16]
                local.write_text(self.mounted_file(PurePosixPath(value)))
                environ[variable] = str(local)
        return load_settings(self.settings_class, environ=environ)


def containers(overlay: str) -> list[Container]:
    found: list[Container] = []
    for workload, pod in pod_specs(overlay):
        for spec in pod["containers"]:
            command = spec.get("command") or []
            if command and command[0] in SETTINGS_BY_COMMAND:
                found.append(Container(overlay, workload, spec, SETTINGS_BY_COMMAND[command[0]]))
    return found


ALL_CONTAINERS = [c for overlay in OVERLAYS for c in containers(overlay)] if shutil.which("kubectl") else []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_deploys_all_three_services_once(overlay: str) -> None:
    commands = sorted(c.spec["command"][0] for c in containers(overlay))
    assert commands == sorted(SETTINGS_BY_COMMAND)


@pytest.mark.parametrize("container", ALL_CONTAINERS, ids=lambda c: c.name)
def test_every_anpr_variable_names_a_setting_of_its_service(container: Container) -> None:
    fields = {container.prefix + name.upper() for name in container.settings_class.model_fields}
    variables = {name for name in container.environment() if name.startswith("ANPR_")}
    for name in variables:
        assert name.startswith(container.prefix), f"{container.name}: {name} belongs to another service"
        assert name in fields, f"{container.name}: {name} is not a field of {container.settings_class.__name__}"


@pytest.mark.parametrize("container", ALL_CONTAINERS, ids=lambda c: c.name)
def test_the_environment_passes_the_settings_loader(container: Container, tmp_path: Path) -> None:
    settings = container.settings(tmp_path)
    assert settings.grpc_host in {"0.0.0.0", "::", "[::]"}, "a pod must listen beyond loopback"
    assert settings.metrics_host in {"0.0.0.0", "::", "[::]"}, "Prometheus scrapes from another pod"
    assert settings.log_format == "json"
    assert settings.page_token_key_file is not None, "replicas must share the page-token key"
    assert len(Path(settings.page_token_key_file).read_bytes()) >= 32
    # Kubernetes' service links would add ANPR_<SERVICE>_SERVICE_HOST etc., which the loader rejects as unknown.
    assert container.pod.get("enableServiceLinks") is False
    if container.overlay == "prod":
        assert not settings.allow_plaintext, "prod serves TLS"
        assert settings.tls_cert_file is not None
        assert settings.health_port is not None


@pytest.mark.parametrize("container", [c for c in ALL_CONTAINERS if c.settings_class is not RecognizeSettings])
def test_database_urls_come_from_secrets_and_name_the_overlays_database(container: Container) -> None:
    environ = container.environment()
    secret_variables = {v["name"] for v in container.spec.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})}
    for field in ("DATABASE_URL", "MIGRATION_DATABASE_URL"):
        variable = container.prefix + field
        assert variable in secret_variables, f"{container.name}: {variable} holds a password: Secret only"
        url = urlsplit(environ[variable])
        assert url.scheme == "postgresql"
        service = url.hostname or ""
        assert service_named(container.overlay, service, url.port or 5432), f"{container.name}: {service}"
        if container.overlay == "prod":
            query = dict(part.split("=", 1) for part in url.query.split("&"))
            assert query["sslmode"] == "verify-full"
            container.mounted_file(PurePosixPath(query["sslrootcert"]))
    owner = urlsplit(environ[container.prefix + "MIGRATION_DATABASE_URL"]).username
    runtime = urlsplit(environ[container.prefix + "DATABASE_URL"]).username
    assert owner != runtime, "the runtime role must not own the schema"


def service_named(overlay: str, host: str, port: int) -> Resource | None:
    """The Service of the render a cluster DNS name resolves to, if it has ``port``."""
    parts = host.split(".")
    if len(parts) > 1 and ".".join(parts[1:]) not in {
        NAMESPACE,
        f"{NAMESPACE}.svc",
        f"{NAMESPACE}.svc.{CLUSTER_DOMAIN}",
    }:
        return None
    for service in of_kind(overlay, "Service"):
        if service["metadata"]["name"] == parts[0] and any(p["port"] == port for p in service["spec"]["ports"]):
            return service
    if overlay == "prod":  # CloudNativePG makes <cluster>-rw (the primary), -ro and -r for each Cluster
        for cluster in of_kind(overlay, "Cluster"):
            if parts[0] in {f"{cluster['metadata']['name']}-{s}" for s in ("rw", "ro", "r")} and port == 5432:
                return cluster
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_targets_name_services_of_the_render(overlay: str, tmp_path: Path) -> None:
    (ingest,) = [c for c in containers(overlay) if c.settings_class is IngestSettings]
    settings = ingest.settings(tmp_path)
    assert isinstance(settings, IngestSettings)
    assert settings.service_token_file is not None, "recognize and hotlist refuse calls without a token"
    for target, workload in ((settings.recognize_target, "anpr-recognize"), (settings.hotlist_target, "anpr-hotlist")):
        assert target.startswith("dns:///"), f"{target}: the dns resolver finds every replica"
        host, _, port = target.removeprefix("dns:///").rpartition(":")
        service = service_named(overlay, host, int(port))
        assert service is not None, f"{overlay}: {target} names no Service of the render"
        assert service["kind"] == "Service"
        labels = pod_labels(named(overlay, "Deployment", workload))
        assert selects(service["spec"]["selector"], labels), f"{target} does not reach {workload}"
        (container,) = [c for c in containers(overlay) if c.workload["metadata"]["name"] == workload]
        assert int(port) == container.settings(tmp_path).grpc_port
        if overlay == "prod":  # the name ingest dials must be in the certificate the target serves
            tls_secret = next(v for v in container.pod["volumes"] if v["name"] == "tls")["secret"]["secretName"]
            (certificate,) = [c for c in of_kind(overlay, "Certificate") if c["spec"]["secretName"] == tls_secret]
            assert host in certificate["spec"]["dnsNames"]
    recognize = service_named(overlay, settings.recognize_target.removeprefix("dns:///").rpartition(":")[0], 50052)
    assert recognize is not None
    assert recognize["spec"].get("clusterIP") == "None", "client-side balancing needs the headless Service"


@pytest.mark.parametrize("container", ALL_CONTAINERS, ids=lambda c: c.name)
def test_ports_and_grpc_probes_match_the_settings(container: Container, tmp_path: Path) -> None:
    settings = container.settings(tmp_path)
    ports = {p["name"]: p["containerPort"] for p in container.spec["ports"]}
    assert settings.grpc_port == ports["grpc"]
    assert settings.metrics_port == ports["metrics"]
    probe_port = settings.health_port if settings.health_port is not None else settings.grpc_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container.spec[probe]["grpc"]["port"] == probe_port, f"{container.name}: {probe}"


def prestop_sleep_seconds(container: Container) -> float:
    command = container.spec["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] in {"sleep", "/bin/sleep"}
    assert len(command) == 2
    return float(command[1])


@pytest.mark.parametrize("container", ALL_CONTAINERS, ids=lambda c: c.name)
def test_pod_grace_covers_drain_and_shutdown_grace(container: Container, tmp_path: Path) -> None:
    assert container.prefix + "SHUTDOWN_GRACE_SECONDS" in container.environment(), "set it next to the pod's"
    settings = container.settings(tmp_path)
    drain = prestop_sleep_seconds(container)
    assert drain > 0
    # Ingest's stop may take up to 1.4 x its grace (deploy/k8s/base/ingest.yaml explains the parts).
    factor = 1.4 if container.settings_class is IngestSettings else 1.0
    assert container.pod["terminationGracePeriodSeconds"] > drain + factor * settings.shutdown_grace_seconds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_meet_pod_security_restricted(overlay: str) -> None:
    assert named(overlay, "Namespace", NAMESPACE)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    for workload, pod in pod_specs(overlay):
        where = f"{overlay}: {workload['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(host_namespace), where
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v], where
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert not security["capabilities"].get("add"), where
            assert security["readOnlyRootFilesystem"] is True, where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{where}: {kind}"
        account = named(overlay, "ServiceAccount", pod["serviceAccountName"])
        assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_one_per_service_and_pinned(overlay: str) -> None:
    for container in containers(overlay):
        repository, _, tag = container.spec["image"].rpartition(":")
        expected = IMAGES[container.workload["metadata"]["name"]]
        if overlay == "prod" and container.settings_class is RecognizeSettings:
            expected += "-gpu"
        assert repository == expected
        assert tag == "0.1.0"


def test_console_scripts_exist() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(SETTINGS_BY_COMMAND) <= set(scripts)


# --- state, scaling, disruption --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_keeps_its_spool_on_a_volume_of_its_own(overlay: str, tmp_path: Path) -> None:
    ingest = named(overlay, "StatefulSet", "anpr-ingest")
    (container,) = [c for c in containers(overlay) if c.workload is ingest]
    settings = container.settings(tmp_path)
    assert isinstance(settings, IngestSettings)
    claims = {t["metadata"]["name"] for t in ingest["spec"]["volumeClaimTemplates"]}
    for path in (settings.spool_path, settings.journal_path, settings.recordings_path):
        mounts = [m for m in container.spec["volumeMounts"] if Path(m["mountPath"]) in path.parents]
        assert len(mounts) == 1, path
        assert mounts[0]["name"] in claims, f"{path} is not on the pod's PersistentVolumeClaim"
    retention = ingest["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert retention == {"whenScaled": "Retain", "whenDeleted": "Retain"}, "a spool may hold undelivered events"
    assert "replicas" not in ingest["spec"], "`kubectl apply` would undo the autoscaler"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_selected_by_a_service_and_a_budget(overlay: str) -> None:
    for workload in of_kind(overlay, *WORKLOAD_KINDS):
        labels = pod_labels(workload)
        assert selects(workload["spec"]["selector"], labels)
        services = [s for s in of_kind(overlay, "Service") if selects(s["spec"]["selector"], labels)]
        assert services, f"{workload['metadata']['name']}: no Service"
        ports = {p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for service in services:
            for port in service["spec"]["ports"]:
                assert port["targetPort"] in ports, f"{service['metadata']['name']}: {port['targetPort']}"
        if workload["kind"] == "StatefulSet":
            governing = named(overlay, "Service", workload["spec"]["serviceName"])
            assert governing["spec"]["clusterIP"] == "None"
        if labels.get("app.kubernetes.io/part-of") == "anpr-suite" and labels.get("app.kubernetes.io/component") in {
            "ingest",
            "recognize",
            "hotlist",
        }:
            budgets = [p for p in of_kind(overlay, "PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
            assert len(budgets) == 1
            assert budgets[0]["spec"].get("maxUnavailable") == 1, "one at a time, never blocking a drain"
            spread = {c["topologyKey"] for c in workload["spec"]["template"]["spec"]["topologySpreadConstraints"]}
            assert spread == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


def test_prod_autoscales_recognize_and_ingest_on_their_queues() -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind("prod", "ScaledObject")}
    assert set(scaled) == {"anpr-recognize", "anpr-ingest"}
    assert not of_kind("prod", "HorizontalPodAutoscaler"), "KEDA makes the HPAs"
    for name, expected_metric in (
        ("anpr-recognize", "anpr_recognize_queue_depth"),
        ("anpr-ingest", "anpr_ingest_pending_frames"),
    ):
        spec = scaled[name]["spec"]
        target = named("prod", spec["scaleTargetRef"]["kind"], name)
        assert "replicas" not in target["spec"]
        assert 2 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
        queries = [t["metadata"]["query"] for t in spec["triggers"] if t["type"] == "prometheus"]
        assert queries
        assert any(expected_metric in q for q in queries), queries
        assert exported_metric(expected_metric)


def exported_metric(name: str) -> bool:
    """Whether the services' code registers a metric family of that name."""
    for module in ("anpr.ingest.server", "anpr.recognize.server", "anpr.recognize.batching"):
        importlib.import_module(module)
    return any(family.name == name for family in REGISTRY.collect())


# --- network policy --------------------------------------------------------------------------------------------


def policies_selecting(overlay: str, labels: Mapping[str, str]) -> list[Resource]:
    return [
        p
        for p in of_kind(overlay, "NetworkPolicy")
        if selects(p["spec"]["podSelector"], labels, empty_selects_all=True)
    ]


def peers_allowed(overlay: str, labels: Mapping[str, str], direction: str, port: int | str) -> list[Resource]:
    key = "from" if direction == "ingress" else "to"
    peers: list[Resource] = []
    for policy in policies_selecting(overlay, labels):
        for rule in policy["spec"].get(direction, []):
            ports = rule.get("ports")
            if ports is None or any(p.get("port") == port for p in ports):
                peers.extend(rule.get(key, [{}]))
    return peers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_denied_by_default(overlay: str) -> None:
    deny = [p for p in of_kind(overlay, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not deny[0]["spec"].get("ingress")
    assert not deny[0]["spec"].get("egress")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_paths_the_suite_needs_are_open_and_no_more(overlay: str) -> None:
    ingest = pod_labels(named(overlay, "StatefulSet", "anpr-ingest"))
    recognize = pod_labels(named(overlay, "Deployment", "anpr-recognize"))
    hotlist = pod_labels(named(overlay, "Deployment", "anpr-hotlist"))

    def only(peers: list[Resource], labels: Mapping[str, str]) -> bool:
        return bool(peers) and all(set(p) == {"podSelector"} and selects(p["podSelector"], labels) for p in peers)

    assert only(peers_allowed(overlay, recognize, "ingress", "grpc"), ingest)
    assert any(
        set(p) == {"podSelector"} and selects(p["podSelector"], ingest)
        for p in peers_allowed(overlay, hotlist, "ingress", "grpc")
    )
    for peer in peers_allowed(overlay, hotlist, "ingress", "grpc"):
        assert peer["podSelector"].get("matchLabels"), "other hotlist clients carry an explicit label"
    assert any(selects(p.get("podSelector", {}), recognize) for p in peers_allowed(overlay, ingest, "egress", 50052))
    assert any(selects(p.get("podSelector", {}), hotlist) for p in peers_allowed(overlay, ingest, "egress", 50053))
    assert not peers_allowed(overlay, recognize, "egress", 5432), "recognize has no database"
    for labels in (ingest, hotlist):
        database = peers_allowed(overlay, labels, "egress", 5432)
        assert database, "PostgreSQL"
        assert all("podSelector" in p for p in database), "PostgreSQL by its pods, not anywhere"
        assert any("namespaceSelector" in p for p in peers_allowed(overlay, labels, "ingress", "metrics"))
    for labels in (ingest, recognize, hotlist):
        assert peers_allowed(overlay, labels, "egress", 53), "DNS"


# --- overlays specifics ----------------------------------------------------------------------------------------


def test_dev_tokens_load_and_match_the_service_token() -> None:
    secrets = secret_data("dev")
    principals = parse_tokens(json.loads(secrets[dev_name("anpr-tokens")]["tokens.json"]))
    token = secrets[dev_name("anpr-service-tokens")]["ingest"]
    principal = principals[token_digest(token)]
    assert [str(r) for r in principal.roles] == ["ingest-service"]


def dev_name(prefix: str) -> str:
    names: list[str] = [
        s["metadata"]["name"] for s in of_kind("dev", "Secret") if s["metadata"]["name"].startswith(prefix + "-")
    ]
    assert len(names) == 1, prefix
    return names[0]


def test_dev_secrets_are_generated_and_marked_dev_only() -> None:
    for secret in of_kind("dev", "Secret"):
        assert secret["metadata"]["labels"]["anpr.io/dev-only"] == "true"
    assert not of_kind("prod", "Secret"), "prod's Secrets come from the operator, never from this tree"


def test_prod_example_secrets_are_placeholders() -> None:
    examples = example_secrets("prod")
    assert examples
    for secret in examples:
        assert secret["kind"] == "Secret"
        values = secret["stringData"]
        assert any("CHANGE-ME" in v for v in values.values()), secret["metadata"]["name"]


def test_prod_database_is_cloudnativepg_with_backups_and_the_service_roles() -> None:
    (cluster,) = of_kind("prod", "Cluster")
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    environ = {v: u for c in containers("prod") for v, u in c.environment().items() if v.endswith("DATABASE_URL")}
    assert {urlsplit(u).username for u in environ.values()} == set(roles)
    secrets = secret_data("prod")
    for name, role in roles.items():
        assert role["login"] is True
        assert secrets[role["passwordSecret"]["name"]]["username"] == name
    assert spec["backup"]["barmanObjectStore"]["s3Credentials"]["accessKeyId"]["name"] in secrets
    (backup,) = of_kind("prod", "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert len(backup["spec"]["schedule"].split()) == 6, "CloudNativePG schedules carry a seconds field"


def test_prod_runs_recognize_on_gpus() -> None:
    recognize = named("prod", "Deployment", "anpr-recognize")
    pod = recognize["spec"]["template"]["spec"]
    assert str(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert pod["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert "nvidia.com/gpu" not in str(named("dev", "Deployment", "anpr-recognize")), "dev runs on the CPU"


def test_every_example_and_manifest_is_a_named_resource() -> None:
    for path in sorted(K8S.rglob("*.yaml")):
        for document in load_documents(path):
            assert isinstance(document.get("apiVersion"), str), path
            assert isinstance(document.get("kind"), str), path
            if path.name != "kustomization.yaml":
                assert document.get("metadata", {}).get("name"), path
