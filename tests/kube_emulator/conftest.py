"""Fixtures for the Kubernetes API emulator tests: a seeded kube-thanos/Bitnami-like cluster.

Everything is driven through the official ``kubernetes`` client, the way the exporter talks to a
real apiserver; the emulator's Python API is only used to seed state and bearer tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client

from exporter.demo.kube_apiserver import EXPORTER_RULES, KubeApiEmulator, Rule
from exporter.demo.sa_token_issuer import new_rsa_key

# Fake bearer tokens for the emulator's static token authenticator (test-only values).
EXPORTER_TOKEN = "exporter-static-token"
READER_TOKEN = "reader-static-token"
ADMIN_TOKEN = "admin-static-token"

STORE_ROLE = "arn:aws:iam::123456789012:role/thanos-store"
IRSA = {
    "eks.amazonaws.com/role-arn": STORE_ROLE,
    "eks.amazonaws.com/audience": "sts.amazonaws.com",
    "eks.amazonaws.com/sts-regional-endpoints": "true",
    "eks.amazonaws.com/token-expiration": "86400",
}
OBJSTORE_YAML = "type: S3\nconfig:\n  bucket: thanos\n  endpoint: s3.us-east-1.amazonaws.com\n"


def _labels(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/instance": name}


def _thanos_container(cmd: str) -> dict[str, Any]:
    """kube-thanos style: env OBJSTORE_CONFIG from a secretKeyRef + ``--objstore.config=$(OBJSTORE_CONFIG)``."""
    return {"name": f"thanos-{cmd}", "image": "quay.io/thanos/thanos:v0.36.1",
            "args": [cmd, "--objstore.config=$(OBJSTORE_CONFIG)"],
            "env": [{"name": "OBJSTORE_CONFIG", "valueFrom": {
                "secretKeyRef": {"name": "thanos-objectstorage", "key": "thanos.yaml"}}}]}


def seed(emu: KubeApiEmulator) -> None:
    emu.add_service_account("thanos", "thanos-store", annotations=IRSA)
    emu.add_service_account("thanos", "thanos-compact")  # no role annotation: the motivating incident
    emu.add_service_account("thanos", "thanos-query")
    emu.add_secret("thanos", "thanos-objectstorage", {"thanos.yaml": OBJSTORE_YAML})
    emu.add_statefulset("thanos", "thanos-store", labels=_labels("thanos-store", "object-store-gateway"),
                        service_account_name="thanos-store", containers=[_thanos_container("store")])
    emu.add_statefulset("thanos", "thanos-compact", labels=_labels("thanos-compact", "database-compactor"),
                        service_account_name="thanos-compact", containers=[_thanos_container("compact")])
    emu.add_deployment("thanos", "thanos-query", labels=_labels("thanos-query", "query-layer"),
                       service_account_name="thanos-query",
                       containers=[{"name": "thanos-query", "args": ["query"]}])
    # Bitnami style in another namespace: config file mounted from a Secret volume.
    bitnami = {"app.kubernetes.io/name": "thanos", "app.kubernetes.io/instance": "thanos",
               "app.kubernetes.io/component": "storegateway"}
    emu.add_service_account("monitoring", "thanos-storegateway", annotations={
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/bitnami-store"})
    emu.add_secret("monitoring", "thanos-objstore-secret", {"objstore.yml": OBJSTORE_YAML})
    emu.add_statefulset(
        "monitoring", "thanos-storegateway", labels=bitnami, service_account_name="thanos-storegateway",
        containers=[{"name": "storegateway", "args": ["store", "--objstore.config-file=/conf/objstore.yml"],
                     "volumeMounts": [{"name": "objstore-config", "mountPath": "/conf"}]}],
        volumes=[{"name": "objstore-config", "secret": {"secretName": "thanos-objstore-secret"}}])

    emu.add_token(EXPORTER_TOKEN, "exporter")
    emu.grant("exporter", *EXPORTER_RULES)
    emu.add_token(READER_TOKEN, "reader")
    emu.grant("reader", Rule(verbs=["get"], resources=["serviceaccounts"], namespace="thanos"))
    emu.add_token(ADMIN_TOKEN, "admin", groups=["system:masters"])


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    """One RSA key for the session: key generation is the slowest part of starting an emulator."""
    return new_rsa_key()


@pytest.fixture
def emu(signing_key: rsa.RSAPrivateKey) -> Iterator[KubeApiEmulator]:
    with KubeApiEmulator(signing_key=signing_key) as e:
        seed(e)
        yield e


@pytest.fixture
def api_client(emu: KubeApiEmulator) -> Iterator[Callable[[str], Any]]:
    """``api_client(token)`` → a ``kubernetes.client.ApiClient`` configured by hand (host + api_key)."""
    made: list[Any] = []

    def make(token: str) -> Any:
        cfg = client.Configuration()
        cfg.host = emu.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        made.append(client.ApiClient(cfg))
        return made[-1]

    yield make
    for c in made:
        c.close()
