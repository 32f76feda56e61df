"""Fixtures for discovery: a fresh Kubernetes API emulator per test, the exporter's kubeconfig with exactly the
RBAC docs/discovery.md asks for, and a Discoverer reading through the official client over real HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.config import KubernetesDiscovery, KubernetesSettings
from exporter.demo.kube_apiserver import KubeApiEmulator, Rule
from exporter.demo.sa_token_issuer import new_rsa_key
from exporter.discovery import Discoverer, KubernetesClusterReader

EXPORTER_USER = "system:serviceaccount:monitoring:objstore-permission-exporter"


def discovery_rules(namespace: str, secret_names: Sequence[str]) -> list[Rule]:
    """docs/discovery.md: list/watch/get Deployments+StatefulSets, get only the objstore Secrets, per namespace."""
    return [Rule(verbs=("get", "list", "watch"), resources=("deployments", "statefulsets"), api_groups=("apps",),
                 namespace=namespace),
            Rule(verbs=("get",), resources=("secrets",), namespace=namespace, resource_names=tuple(secret_names))]


def identity_rules(namespace: str) -> list[Rule]:
    """What the kubernetes identity source needs on the discovered ServiceAccounts."""
    return [Rule(verbs=("get",), resources=("serviceaccounts",), namespace=namespace),
            Rule(verbs=("create",), resources=("serviceaccounts/token",), namespace=namespace)]


class Cluster:
    """The emulator plus the exporter's access to it."""

    def __init__(self, kube: KubeApiEmulator, directory: Path) -> None:
        self.kube = kube
        token = f"exporter-{secrets.token_hex(8)}"
        kube.add_token(token, EXPORTER_USER)
        # one kubeconfig file per test: the identity source caches one API client per kubeconfig path
        self.kubeconfig = kube.write_kubeconfig(directory / f"kubeconfig-{secrets.token_hex(4)}", token)

    def grant(self, *rules: Rule) -> None:
        self.kube.grant(EXPORTER_USER, *rules)

    def settings(self, namespaces: Sequence[str], **extra: Any) -> KubernetesDiscovery:
        return KubernetesDiscovery.model_validate(
            {"enabled": True, "namespaces": list(namespaces), "identity": {"fallback": "node"}, **extra})

    def discoverer(self, namespaces: Sequence[str], **extra: Any) -> Discoverer:
        reader = KubernetesClusterReader(KubernetesSettings(kubeconfig=self.kubeconfig), timeout=5)
        return Discoverer(self.settings(namespaces, **extra), reader)

    def requests_by_exporter(self) -> list[tuple[str, str, int]]:
        return [(r.method, r.path.split("?")[0], r.status) for r in self.kube.requests if r.user == EXPORTER_USER]


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture
def kube(signing_key: rsa.RSAPrivateKey) -> Iterator[KubeApiEmulator]:
    with KubeApiEmulator(signing_key=signing_key) as emu:
        yield emu


@pytest.fixture
def cluster(kube: KubeApiEmulator, tmp_path: Path) -> Cluster:
    return Cluster(kube, tmp_path)
