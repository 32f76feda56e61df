"""Without `global.kubernetes.kubeconfig`, a pod uses the in-cluster config: KUBERNETES_SERVICE_HOST/PORT, its
ServiceAccount token and the cluster CA. The emulator serves HTTPS with its own CA; the two well-known file
paths are pointed at temp files (the only thing redirected), everything else is the client's real loader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import exporter.identities.registry as registry
from exporter.app import run_once
from exporter.demo.kube_apiserver import EXPORTER_RULES, KubeApiEmulator
from exporter.profiles import Component
from tests.identities.conftest import KubeEnv
from tests.identities.support import ROLE_ANNOTATION, explain, kube_target


@pytest.fixture
def in_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[KubeApiEmulator]:
    from kubernetes.config import incluster_config

    with KubeApiEmulator(tls=True) as kube:
        kube.add_token("in-cluster-exporter-token", "system:serviceaccount:monitoring:objstore-permission-exporter")
        kube.grant("system:serviceaccount:monitoring:objstore-permission-exporter", *EXPORTER_RULES)
        token = tmp_path / "token"
        token.write_text("in-cluster-exporter-token")
        assert kube.ca_cert_path is not None
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(kube.ca_cert_path))
        host, port = kube.url.removeprefix("https://").split(":")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        monkeypatch.setattr(registry, "_apis", {})  # a fresh process-wide client, dropped afterwards
        yield kube


def test_in_cluster_config_is_used_without_a_kubeconfig(in_cluster: KubeApiEmulator, kenv: KubeEnv) -> None:
    arn = kenv.role(Component.COMPACTOR)
    in_cluster.add_service_account(kenv.ns, "thanos-compact", annotations={ROLE_ANNOTATION: arn})
    config = kenv.env.config([kube_target("c", "compactor", kenv.ns, "thanos-compact")])
    assert config.global_.kubernetes.kubeconfig is None
    [result] = run_once(config)
    assert result.identity.ok and result.identity.source == "kubernetes_irsa", explain(result)
    assert result.healthy, explain(result)
    prefix = f"/api/v1/namespaces/{kenv.ns}/"
    users = {(r.method, r.user, r.status) for r in in_cluster.requests if r.path.startswith(prefix)}
    assert users == {("GET", "system:serviceaccount:monitoring:objstore-permission-exporter", 200),
                     ("POST", "system:serviceaccount:monitoring:objstore-permission-exporter", 201)}
