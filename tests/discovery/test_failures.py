"""Discovery failures never raise: they are logged, and what the last good refresh found is kept."""

from __future__ import annotations

import logging

import pytest

from exporter.demo.kube_apiserver import KubeApiEmulator, Rule

from .conftest import EXPORTER_USER, Cluster, discovery_rules
from .manifests import KUBE_THANOS_KEY, KUBE_THANOS_SECRET, add_kube_thanos, objstore_yaml

AWS = "s3.eu-west-1.amazonaws.com"
LIST_ONLY = Rule(verbs=("get", "list", "watch"), resources=("deployments", "statefulsets"), api_groups=("apps",),
                 namespace="monitoring")


@pytest.fixture
def seeded(kube: KubeApiEmulator) -> KubeApiEmulator:
    kube.add_secret("monitoring", KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml("thanos", AWS)})
    add_kube_thanos(kube, "monitoring")
    return kube


def test_secrets_forbidden_is_logged_not_raised(cluster: Cluster, seeded: KubeApiEmulator,
                                                caplog: pytest.LogCaptureFixture) -> None:
    cluster.grant(LIST_ONLY)  # no `get` on secrets
    discoverer = cluster.discoverer(["monitoring"])
    with caplog.at_level(logging.WARNING, logger="exporter.discovery"):
        assert discoverer.discover() == []
    assert len(discoverer.problems) == 6  # compact, store x2, receive ingestor, rule, bucket: one per workload
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert f"reading Secret monitoring/{KUBE_THANOS_SECRET}: forbidden for the exporter (HTTP 403)" in messages
    assert "docs/discovery.md" in messages
    # one GET per refresh, even though six containers reference the Secret
    secret_reads = [r for r in cluster.requests_by_exporter() if "/secrets/" in r[1]]
    assert secret_reads == [("GET", f"/api/v1/namespaces/monitoring/secrets/{KUBE_THANOS_SECRET}", 403)]


def test_secret_access_revoked_keeps_the_last_discovered_targets(cluster: Cluster, seeded: KubeApiEmulator,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]))
    discoverer = cluster.discoverer(["monitoring"])
    before = discoverer.discover()
    assert len(before) == 5

    seeded.revoke(EXPORTER_USER)
    cluster.grant(LIST_ONLY)
    with caplog.at_level(logging.WARNING, logger="exporter.discovery"):
        after = discoverer.discover()
    assert after == before
    assert any("keeping its last discovered targets" in r.getMessage() for r in caplog.records)

    # a workload deleted meanwhile still disappears: only unreadable workloads are kept
    seeded.delete("statefulsets", "monitoring", "thanos-rule")
    assert {t.name for t in discoverer.discover()} == {t.name for t in before} - {"monitoring/thanos-rule"}


def test_listing_forbidden_or_api_down_keeps_the_last_discovered_targets(
        cluster: Cluster, seeded: KubeApiEmulator, caplog: pytest.LogCaptureFixture) -> None:
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]))
    discoverer = cluster.discoverer(["monitoring"])
    before = discoverer.discover()
    assert len(before) == 5

    seeded.revoke(EXPORTER_USER)
    with caplog.at_level(logging.WARNING, logger="exporter.discovery"):
        assert discoverer.discover() == before
    assert any("listing Deployments/StatefulSets in monitoring: forbidden" in r.getMessage()
               and "keeping the last discovered targets" in r.getMessage() for r in caplog.records)

    seeded.stop()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="exporter.discovery"):
        assert discoverer.discover() == before
    assert discoverer.problems and "listing Deployments/StatefulSets in monitoring" in discoverer.problems[0]


def test_broken_objstore_secret_is_reported(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("monitoring", KUBE_THANOS_SECRET, {"other-key": "x", "bad.yaml": "type: S3\nconfig: [\n"})
    add_kube_thanos(kube, "monitoring")
    kube.add_statefulset("monitoring", "bad-yaml", labels={"app": "b"}, containers=[{
        "name": "thanos", "args": ["compact", "--objstore.config=$(C)"],
        "env": [{"name": "C", "valueFrom": {"secretKeyRef": {"name": KUBE_THANOS_SECRET, "key": "bad.yaml"}}}]}])
    kube.add_statefulset("monitoring", "no-endpoint", labels={"app": "c"}, containers=[{
        "name": "thanos", "args": ["compact", "--objstore.config=$(C)"],
        "env": [{"name": "C", "value": "type: S3\nconfig:\n  bucket: x\n"}]}])
    kube.add_statefulset("monitoring", "undefined-var", labels={"app": "d"}, containers=[{
        "name": "thanos", "args": ["compact", "--objstore.config=$(NOPE)"]}])
    kube.add_statefulset("monitoring", "wrong-mount", labels={"app": "e"}, containers=[{
        "name": "thanos", "args": ["store", "--objstore.config-file=/elsewhere/objstore.yml"]}])
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]))
    discoverer = cluster.discoverer(["monitoring"])
    assert discoverer.discover() == []
    problems = "\n".join(discoverer.problems)
    assert f"Secret monitoring/{KUBE_THANOS_SECRET} has no key 'thanos.yaml'" in problems
    assert "bad.yaml: invalid YAML" in problems
    assert "config.endpoint: Field required" in problems
    assert "$(NOPE) is not defined" in problems
    assert "no volume is mounted at /elsewhere/objstore.yml" in problems
