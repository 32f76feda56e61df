"""The kustomize base and overlays: schema-valid, least-privilege RBAC, hardened pod, consistent wiring."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from exporter import __version__
from exporter.config import KubernetesIdentity, load_config
from exporter.durations import parse_duration
from tests.deploy.support import (
    REPO,
    Doc,
    container,
    deployment,
    exporter_config,
    of_kind,
    one,
)

CRD_GROUP = "monitoring.coreos.com"
NAMESPACE = "monitoring"
EXPORTER_SA = "objstore-permission-exporter"
PROBED_SAS = {"thanos-compact", "thanos-store", "thanos-receive", "thanos-rule", "prometheus-k8s"}
CONFIG_FILE = "/etc/objstore-permission-exporter/config.yml"
OBJSTORE_FILE = "/etc/thanos/objstore/thanos.yaml"
# A Thanos objstore config as kube-thanos' Secret thanos-objectstorage would hold it (key thanos.yaml).
SAMPLE_OBJSTORE = """\
type: S3
config:
  bucket: thanos
  endpoint: s3.us-east-1.amazonaws.com
  region: us-east-1
prefix: cluster-a
"""
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}
# kubectl apply (client-side) stores the object in an annotation; all annotations together must stay below 256 KiB.
ANNOTATION_LIMIT = 256 * 1024


def _rules(docs: list[Doc]) -> list[dict[str, Any]]:
    return [rule for role in of_kind(docs, "Role") + of_kind(docs, "ClusterRole") for rule in role.get("rules", [])]


def _grants(docs: list[Doc]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """(apiGroup, resource, verb, resourceNames) for every rule of every role."""
    return {
        (group, resource, verb, tuple(sorted(rule.get("resourceNames", []))))
        for rule in _rules(docs)
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


# --- schema ---------------------------------------------------------------------------------------------------


def test_builtin_objects_pass_strict_schema_validation(rendering: tuple[str, list[Doc]]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    name, docs = rendering
    builtin = [d for d in docs if not d["apiVersion"].startswith(CRD_GROUP + "/")]
    assert {d["kind"] for d in builtin} >= {"Deployment", "ServiceAccount", "Role", "RoleBinding", "Service",
                                            "ConfigMap"}
    for doc in builtin:
        kubernetes_validate.validate(doc, "1.37", strict=True)
    # Everything that is not validated by schema is one of the two CRD kinds checked by hand below.
    assert {d["kind"] for d in docs if d not in builtin} == {"ServiceMonitor", "PrometheusRule"}, name


def test_strict_validation_rejects_an_unknown_field(renderings: dict[str, list[Doc]]) -> None:
    """The validator is really on: a misspelt field in the Deployment is an error, not a pass."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    broken = copy.deepcopy(deployment(renderings["static"]))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {"runAsNonRoot": True}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37", strict=True)


def test_every_object_is_namespaced_in_the_exporter_namespace(rendering: tuple[str, list[Doc]]) -> None:
    name, docs = rendering
    for doc in docs:
        assert doc["kind"] not in CLUSTER_SCOPED, f"{name}: cluster-scoped {doc['kind']}"
        assert doc["metadata"].get("namespace") == NAMESPACE, f"{name}: {doc['kind']}/{doc['metadata']['name']}"


def test_every_object_fits_client_side_apply(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    for doc in docs:
        assert len(json.dumps(doc)) < ANNOTATION_LIMIT, f"{doc['kind']}/{doc['metadata']['name']} too large"


# --- CRD objects (not covered by kubernetes-validate) -----------------------------------------------------------


def test_servicemonitor_scrapes_the_exporter_service(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    sm = one(docs, "ServiceMonitor")
    svc = one(docs, "Service", "objstore-permission-exporter")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["namespace"] == svc["metadata"]["namespace"] or "namespaceSelector" in sm["spec"]
    match = sm["spec"]["selector"]["matchLabels"]
    assert match and match.items() <= svc["metadata"]["labels"].items(), "selector does not match the Service"
    endpoints = sm["spec"]["endpoints"]
    assert endpoints
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    for ep in endpoints:
        assert ep["port"] in port_names
        assert ep.get("path", "/metrics") == "/metrics"
        assert parse_duration(ep["scrapeTimeout"]) <= parse_duration(ep["interval"])
    # No jobLabel: the scrape job is then the Service name, which is what every alert selects.
    assert "jobLabel" not in sm["spec"]
    rules = yaml.safe_dump(one(docs, "PrometheusRule")["spec"])
    assert f'job="{svc["metadata"]["name"]}"' in rules


def test_service_reaches_the_exporter_port(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    svc = one(docs, "Service", "objstore-permission-exporter")
    pod_labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    assert port == {"name": "http-metrics", "port": 9832, "targetPort": "http-metrics", "protocol": "TCP"}
    assert {"name": "http-metrics", "containerPort": 9832, "protocol": "TCP"} in container(docs)["ports"]


def test_scrape_interval_is_shorter_than_the_probe_interval(rendering: tuple[str, list[Doc]]) -> None:
    """The alerts count individual probe cycles, so Prometheus must see every cycle."""
    _, docs = rendering
    probe_interval = parse_duration(yaml.safe_load(exporter_config(docs)[1])["global"]["interval"])
    for ep in one(docs, "ServiceMonitor")["spec"]["endpoints"]:
        assert parse_duration(ep["interval"]) < probe_interval


def test_prometheusrule_has_the_groups_of_alerts(rendering: tuple[str, list[Doc]], generator: ModuleType) -> None:
    _, docs = rendering
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    assert groups, "no rule groups"
    for group in groups:
        assert group["name"] and group["rules"]
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r) and r["expr"]
    files = sorted((REPO / "alerts").glob("*.rules.yml"))
    assert files, "no alerts/*.rules.yml"
    expected = [g for path in files for g in yaml.safe_load(path.read_text())["groups"]]
    assert groups == expected


def test_dashboard_configmap_has_the_dashboards_verbatim(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    cm = one(docs, "ConfigMap", "objstore-permission-exporter-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted((REPO / "dashboards").glob("*.json"))
    assert files, "no dashboards/*.json"
    assert cm["data"] == {p.name: p.read_text() for p in files}
    for text in cm["data"].values():
        assert json.loads(text)["uid"]


def test_generated_files_are_up_to_date(generator: ModuleType) -> None:
    diffs = generator.stale(generator.outputs())
    assert not diffs, "run .venv/bin/python deploy/generate.py\n" + "".join(diffs)


def test_generator_check_mode_detects_a_stale_file(generator: ModuleType, tmp_path: Path) -> None:
    out = {tmp_path / "x.yaml": "new\n"}
    (tmp_path / "x.yaml").write_text("old\n")
    assert generator.stale(out)
    (tmp_path / "x.yaml").write_text("new\n")
    assert not generator.stale(out)


# --- RBAC -----------------------------------------------------------------------------------------------------


def test_rbac_has_no_wildcards(rendering: tuple[str, list[Doc]]) -> None:
    name, docs = rendering
    rules = _rules(docs)
    assert rules
    for rule in rules:
        assert "nonResourceURLs" not in rule
        for field in ("verbs", "resources", "apiGroups", "resourceNames"):
            for value in rule.get(field, []):
                assert "*" not in value, f"{name}: wildcard in {field}: {rule}"


def test_rbac_is_namespaced_and_bound_only_to_the_exporter(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    roles = {r["metadata"]["name"] for r in of_kind(docs, "Role")}
    bindings = of_kind(docs, "RoleBinding")
    assert {b["roleRef"]["name"] for b in bindings} == roles
    for b in bindings:
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": b["roleRef"]["name"]}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": EXPORTER_SA, "namespace": NAMESPACE}]


def test_base_rbac_is_exactly_get_serviceaccount_and_create_token(rendering: tuple[str, list[Doc]]) -> None:
    name, docs = rendering
    Grant = tuple[str, str, str, tuple[str, ...]]
    names = tuple(sorted(PROBED_SAS))
    base: set[Grant] = {("", "serviceaccounts", "get", names), ("", "serviceaccounts/token", "create", names)}
    discovery: set[Grant] = {
        ("apps", r, v, ()) for r in ("deployments", "statefulsets") for v in ("get", "list", "watch")}
    discovery |= {("", "secrets", "get", ("thanos-objectstorage",))}
    assert _grants(docs) == (base | discovery if name == "discovery" else base)


def test_secrets_only_in_discovery_and_only_get_by_name(rendering: tuple[str, list[Doc]]) -> None:
    name, docs = rendering
    secret_rules = [r for r in _rules(docs) if "secrets" in r.get("resources", [])]
    if name != "discovery":
        assert not secret_rules
        return
    assert secret_rules
    for rule in secret_rules:
        assert rule["resources"] == ["secrets"] and rule["apiGroups"] == [""]
        assert rule["verbs"] == ["get"]
        assert rule["resourceNames"] == ["thanos-objectstorage"]


def test_role_covers_exactly_the_configured_service_accounts(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    config = yaml.safe_load(exporter_config(docs)[1])
    configured = {(t["namespace"], t["service_account"]) for t in config["targets"]}
    role = one(docs, "Role", "objstore-permission-exporter")
    for rule in role["rules"]:
        assert {(role["metadata"]["namespace"], sa) for sa in rule["resourceNames"]} == configured


# --- the pod ---------------------------------------------------------------------------------------------------


def test_deployment_security_context(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    pod = deployment(docs)["spec"]["template"]["spec"]
    c = container(docs)
    psc, csc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and csc["runAsNonRoot"] is True
    for sc in (psc, csc):
        assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc.get("privileged", False) is False
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    # The exporter writes nothing, so it has no writable volume either.
    assert all("emptyDir" not in v and "hostPath" not in v for v in pod["volumes"])
    assert all(m.get("readOnly") is True for m in c["volumeMounts"])


def test_deployment_basics(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    dep = deployment(docs)
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1
    assert pod["serviceAccountName"] == EXPORTER_SA
    assert pod["automountServiceAccountToken"] is True
    assert one(docs, "ServiceAccount", EXPORTER_SA)["automountServiceAccountToken"] is True
    c = container(docs)
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}
    image, _, tag = c["image"].rpartition(":")
    assert image.endswith("objstore-permission-exporter") and tag == __version__
    assert "--web.listen-address=:9832" in c["args"]
    assert c.get("command") is None, "command would replace the image's entrypoint"


def test_probes(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    c = container(docs)
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http-metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http-metrics"}


def test_config_and_objstore_secret_are_mounted_read_only(rendering: tuple[str, list[Doc]]) -> None:
    _, docs = rendering
    pod = deployment(docs)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    # The image's entrypoint reads the config from CONFIG_FILE.
    cm, _ = exporter_config(docs)
    assert mounts["config"]["mountPath"] == str(Path(CONFIG_FILE).parent)
    assert "config.yml" in cm["data"]
    secret = volumes["thanos-objstore"]["secret"]
    assert secret["secretName"] == "thanos-objectstorage"
    assert secret["items"] == [{"key": "thanos.yaml", "path": "thanos.yaml"}]
    assert secret["defaultMode"] == 0o440
    assert secret.get("optional", False) is False
    assert mounts["thanos-objstore"]["mountPath"] == str(Path(OBJSTORE_FILE).parent)
    assert mounts["thanos-objstore"]["readOnly"] is True


def test_service_account_role_annotation_only_in_eks(rendering: tuple[str, list[Doc]]) -> None:
    name, docs = rendering
    annotations = one(docs, "ServiceAccount", EXPORTER_SA)["metadata"].get("annotations") or {}
    arn = annotations.get("eks.amazonaws.com/role-arn")
    if name == "eks":
        assert arn is not None and arn.startswith("arn:aws:iam::") and ":role/" in arn
    else:
        assert arn is None


# --- the example config ----------------------------------------------------------------------------------------


def _with_objstore_file(config_text: str, directory: Path) -> Path:
    """A copy of the config whose objstore_config_file points at a sample thanos.yaml in `directory`."""
    objstore = directory / "thanos.yaml"
    objstore.write_text(SAMPLE_OBJSTORE)
    data = yaml.safe_load(config_text)
    for bucket in data["buckets"].values():
        assert bucket["objstore_config_file"] == OBJSTORE_FILE
        bucket["objstore_config_file"] = str(objstore)
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_example_config_passes_the_exporters_validation(rendering: tuple[str, list[Doc]], tmp_path: Path) -> None:
    name, docs = rendering
    config = load_config(_with_objstore_file(exporter_config(docs)[1], tmp_path))
    assert {t.service_account for t in config.targets} == PROBED_SAS
    assert {t.component.value for t in config.targets} == {"compactor", "store", "receive", "rule", "sidecar"}
    for target in config.targets:
        assert target.namespace == NAMESPACE
        assert isinstance(target.identity, KubernetesIdentity)
        assert target.identity.fallback == ("none" if name == "eks" else "node")
    sidecar = next(t for t in config.targets if t.component.value == "sidecar")
    assert sidecar.service_account == "prometheus-k8s"
    assert config.buckets["thanos"].config.config.bucket == "thanos"


def test_example_config_passes_config_check(rendering: tuple[str, list[Doc]], tmp_path: Path) -> None:
    _, docs = rendering
    cli = [sys.executable, "-m", "exporter.cli", "config", "check"]
    path = _with_objstore_file(exporter_config(docs)[1], tmp_path)
    out = subprocess.run([*cli, f"--config.file={path}"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "OK (5 targets, 1 buckets)" in out.stdout
    # As committed it reads the objstore file from the Secret mount, which this machine does not have.
    original = tmp_path / "as-committed.yml"
    original.write_text(exporter_config(docs)[1])
    out = subprocess.run([*cli, f"--config.file={original}"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2 and f"cannot read {OBJSTORE_FILE}" in out.stderr

