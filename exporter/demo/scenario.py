"""The embedded default: a realistic Thanos setup on EKS-like emulators, reproducing the motivating incident.

Two emulators on loopback: moto (S3/STS/IAM, IAM enforced, in a child process) and a Kubernetes API emulator
with a real ServiceAccount token issuer (in process). Namespace `monitoring` holds kube-thanos-style
ServiceAccounts (thanos-compact, thanos-store, thanos-receive, thanos-rule, and prometheus-k8s for the
Prometheus pods' Thanos sidecar), each annotated with its IAM role (`eks.amazonaws.com/role-arn`), as IRSA
wants it. The exporter probes every target through its ServiceAccount (`identity: {source: kubernetes,
fallback: node}`): read the annotation, mint a token with the TokenRequest API, sts:AssumeRoleWithWebIdentity.

The incident: the compactor's ServiceAccount lost its role annotation (its role `thanos-compactor` exists and is
fine). Its pods silently run as the node's credentials, which can do everything the compactor needs except
s3:DeleteObject: compaction works for days, then deleting marked blocks fails. The exporter reports the
compactor's identity failed with `no_role_annotation`, probes its operations as `node_fallback`, and `delete`
fails with `access_denied`; every other component is green.

The exporter's Kubernetes identity is its own ServiceAccount with exactly the RBAC the docs ask for: `get` on
those ServiceAccounts and `create` on their `serviceaccounts/token` subresource, by name. A separate janitor
user keeps the canary, scoped to the probe dir.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from exporter.config import Config, load_config
from exporter.demo.emulator import Emulator, start_emulator
from exporter.demo.kube_apiserver import KubeApiEmulator, Rule
from exporter.policies import component_policy, janitor_policy
from exporter.profiles import Component, Operation

BUCKET = "thanos"
PROBE_DIR = "objstore-permission-probe"
POLICY_NAME = "thanos-objstore"
NAMESPACE = "monitoring"
# (component, ServiceAccount as kube-thanos / kube-prometheus name them); the sidecar runs as Prometheus
COMPONENTS: list[tuple[Component, str]] = [
    (Component.COMPACTOR, "thanos-compact"),
    (Component.STORE, "thanos-store"),
    (Component.RECEIVE, "thanos-receive"),
    (Component.RULE, "thanos-rule"),
    (Component.SIDECAR, "prometheus-k8s"),
]
# The incident: this component's ServiceAccount has no role annotation, so it runs as the node.
UNANNOTATED = Component.COMPACTOR
# What the node's credentials cannot do (the compactor then lacks exactly this).
NODE_LACKS = frozenset({Operation.DELETE})
NODE_USER = "node"
NODE_POLICY_NAME = "node-policy"
EXPORTER_SERVICE_ACCOUNT = "objstore-permission-exporter"
IRSA_AUDIENCE = "sts.amazonaws.com"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
ENV_PREFIX = "OPE_DEMO_"


def role_policy(component: Component) -> dict[str, Any]:
    """The component's own role policy: least privilege for its profile (the compactor's role is fine too)."""
    return component_policy(component, BUCKET)


def node_policy(healthy: bool = False) -> dict[str, Any]:
    """The node's credentials: everything the compactor needs except s3:DeleteObject (`healthy=True` adds it)."""
    return component_policy(Component.COMPACTOR, BUCKET, without=frozenset() if healthy else NODE_LACKS)


def _static_from_env(name: str) -> dict[str, Any]:
    return {"source": "static",
            "access_key_id": {"env": f"{ENV_PREFIX}{name}_ACCESS_KEY_ID"},
            "secret_access_key": {"env": f"{ENV_PREFIX}{name}_SECRET_ACCESS_KEY"}}


def _export_keys(name: str, keys: tuple[str, str]) -> None:
    os.environ[f"{ENV_PREFIX}{name}_ACCESS_KEY_ID"], os.environ[f"{ENV_PREFIX}{name}_SECRET_ACCESS_KEY"] = keys


def _web_identity_trust(provider_arn: str, issuer: str, service_account: str) -> dict[str, Any]:
    """The trust policy IRSA documents (moto does not evaluate it for web identity; RGW tests do)."""
    host = issuer.split("://", 1)[-1]
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": provider_arn},
        "Condition": {"StringEquals": {
            f"{host}:sub": f"system:serviceaccount:{NAMESPACE}:{service_account}",
            f"{host}:aud": IRSA_AUDIENCE}}}]}


def setup(emu: Emulator, kube: KubeApiEmulator, workdir: Path, interval: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create bucket, IAM (roles, node user, janitor) and the cluster; return (exporter config, emulator info)."""
    emu.client("s3").create_bucket(Bucket=BUCKET)
    provider_arn = emu.create_oidc_provider(kube.issuer_url, [IRSA_AUDIENCE], kube.oidc_thumbprint())
    _export_keys("NODE", emu.create_user(NODE_USER, node_policy(), NODE_POLICY_NAME))
    _export_keys("JANITOR", emu.create_user("objstore-permission-janitor", janitor_policy(BUCKET, "", PROBE_DIR)))
    node_identity = _static_from_env("NODE")

    targets, info_components = [], {}
    for component, service_account in COMPONENTS:
        role = f"thanos-{component.value}"
        trust = _web_identity_trust(provider_arn, kube.issuer_url, service_account)
        arn = emu.create_role(role, trust, POLICY_NAME, role_policy(component))
        annotated = component is not UNANNOTATED
        kube.add_service_account(NAMESPACE, service_account,
                                 annotations={ROLE_ANNOTATION: arn} if annotated else None)
        name = f"{NAMESPACE}/{service_account}"
        entry: dict[str, Any] = {
            "target": name, "service_account": service_account, "role_annotated": annotated,
            "role_name": role, "role_arn": arn, "policy_name": POLICY_NAME,
            # the IAM policy that actually governs what this component can do
            "effective_policy": {"kind": "role", "name": role, "policy_name": POLICY_NAME},
        }
        if not annotated:
            entry.update(node_user=NODE_USER, node_policy_name=NODE_POLICY_NAME,
                         effective_policy={"kind": "user", "name": NODE_USER, "policy_name": NODE_POLICY_NAME})
        info_components[component.value] = entry
        targets.append({
            "name": name,
            "component": component.value,
            "namespace": NAMESPACE,
            "service_account": service_account,
            "bucket": BUCKET,
            "identity": {"source": "kubernetes", "fallback": "node", "node_identity": node_identity},
            "expected_principal": arn,
        })

    # The exporter's own ServiceAccount, allowed exactly what the kubernetes identity source needs.
    kube.add_service_account(NAMESPACE, EXPORTER_SERVICE_ACCOUNT)
    names = [sa for _, sa in COMPONENTS]
    kube.grant(f"system:serviceaccount:{NAMESPACE}:{EXPORTER_SERVICE_ACCOUNT}",
               Rule(verbs=("get",), resources=("serviceaccounts",), namespace=NAMESPACE, resource_names=names),
               Rule(verbs=("create",), resources=("serviceaccounts/token",), namespace=NAMESPACE,
                    resource_names=names))
    token = kube.mint_token(NAMESPACE, EXPORTER_SERVICE_ACCOUNT, expiration_seconds=365 * 86400)
    kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig", token, namespace=NAMESPACE,
                                       user=EXPORTER_SERVICE_ACCOUNT)

    config = {
        "global": {
            "interval": interval,
            "timeout": "5s",
            "jitter": "1s",
            "probe_dir": PROBE_DIR,
            "janitor": {"identity": _static_from_env("JANITOR")},
            "kubernetes": {"kubeconfig": str(kubeconfig)},
        },
        "buckets": {BUCKET: {"objstore": {
            "type": "S3",
            "config": {"bucket": BUCKET, "endpoint": emu.endpoint, "insecure": True},
        }}},
        "targets": targets,
    }
    info = {
        "url": emu.url, "endpoint": emu.endpoint, "region": "us-east-1", "bucket": BUCKET, "probe_dir": PROBE_DIR,
        "admin": {"access_key_id": emu.admin_access_key_id, "secret_access_key": emu.admin_secret_access_key},
        "kubernetes": {"url": kube.url, "namespace": NAMESPACE, "issuer": kube.issuer_url,
                       "exporter_service_account": EXPORTER_SERVICE_ACCOUNT},
        "node": {"user_name": NODE_USER, "policy_name": NODE_POLICY_NAME},
        "components": info_components,
        "notes": ("components.<c>.effective_policy names the IAM policy that governs what the component can do: "
                  "its role's inline policy, or, for a ServiceAccount without a role annotation (the compactor), "
                  "the node user's inline policy. Change that one (iam put_user_policy / put_role_policy with the "
                  "admin keys) to grant or revoke a permission at runtime."),
    }
    return config, info


def _import_kubernetes_client() -> None:
    from kubernetes import client, config  # noqa: F401

    client.CoreV1Api  # noqa: B018 (the lazy attribute access is the import)


@contextmanager
def start_demo(interval: str = "15s", info_file: Path | None = None) -> Iterator[tuple[Config, Path]]:
    """Start both emulators, set up the scenario, enforce IAM, and yield the validated exporter config."""
    # Importing the Kubernetes client's API classes costs ~2 s of CPU; do it while the emulator process starts.
    warm = threading.Thread(target=_import_kubernetes_client, name="warm-kubernetes-client", daemon=True)
    warm.start()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ope-demo-")))
        emu = start_emulator(separate_process=True)
        stack.callback(emu.stop)
        kube = stack.enter_context(KubeApiEmulator())
        config_data, info = setup(emu, kube, workdir, interval)
        emu.enforce_iam(True)
        path = workdir / "objstore-permission-exporter.yml"
        path.write_text(yaml.safe_dump(config_data, sort_keys=False))
        if info_file is not None:
            info_file.write_text(json.dumps(info, indent=2))
        yield load_config(path), path
