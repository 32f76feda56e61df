"""Discovery over real HTTP: the official client lists Deployments/StatefulSets and reads objstore Secrets from
the Kubernetes API emulator, seeded with kube-thanos, Bitnami and prometheus-operator style manifests."""

from __future__ import annotations

from typing import Any

from exporter.config import KubernetesIdentity, ObjstoreConfigIdentity
from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.profiles import PROFILES, Component, Operation
from exporter.targets import Target

from .conftest import Cluster, discovery_rules
from .manifests import (
    BITNAMI_KEY,
    BITNAMI_SECRET,
    KUBE_THANOS_KEY,
    KUBE_THANOS_SECRET,
    add_bitnami,
    add_kube_thanos,
    add_prometheus,
    add_query,
    objstore_yaml,
)

AWS = "s3.eu-west-1.amazonaws.com"  # names its region: no bucket_location needed


def summary(targets: list[Target]) -> set[tuple[str, str, str, str, str, str]]:
    return {(t.name, t.component.value, t.namespace, t.service_account, t.s3.bucket, t.prefix) for t in targets}


def test_kube_thanos_and_prometheus_operator_manifests(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("monitoring", KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml("thanos-metrics", AWS)})
    kube.add_secret("monitoring", "unrelated-secret", {"password": "do-not-read"})
    add_kube_thanos(kube, "monitoring")
    add_prometheus(kube, "monitoring")
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]))

    discoverer = cluster.discoverer(["monitoring"])
    targets = discoverer.discover()

    assert discoverer.problems == []
    assert summary(targets) == {
        ("monitoring/thanos-compact", "compactor", "monitoring", "thanos-compact", "thanos-metrics", ""),
        # two store shards, one ServiceAccount, one bucket: one target under their common name
        ("monitoring/thanos-store", "store", "monitoring", "thanos-store", "thanos-metrics", ""),
        ("monitoring/thanos-receive-ingestor-default", "receive", "monitoring", "thanos-receive",
         "thanos-metrics", ""),
        ("monitoring/thanos-rule", "rule", "monitoring", "thanos-rule", "thanos-metrics", ""),
        ("monitoring/thanos-bucket", "bucket-web", "monitoring", "thanos-bucket", "thanos-metrics", ""),
        # the sidecar inside the Prometheus pod runs as Prometheus's ServiceAccount
        ("monitoring/prometheus-k8s", "sidecar", "monitoring", "prometheus-k8s", "thanos-metrics", ""),
    }  # not query, not the receive router (no objstore flag)
    for t in targets:
        assert t.identity == KubernetesIdentity(fallback="node")
        assert t.required == PROFILES[t.component]  # the endpoint names the region: no bucket_location
        assert t.s3.endpoint == AWS
    # exactly the reads the documented RBAC allows: two lists, and the objstore Secret once per refresh
    assert sorted(cluster.requests_by_exporter()) == sorted([
        ("GET", "/apis/apps/v1/namespaces/monitoring/deployments", 200),
        ("GET", "/apis/apps/v1/namespaces/monitoring/statefulsets", 200),
        ("GET", f"/api/v1/namespaces/monitoring/secrets/{KUBE_THANOS_SECRET}", 200),
    ])


def test_bitnami_chart_manifests(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("observability", BITNAMI_SECRET,
                    {BITNAMI_KEY: objstore_yaml("bitnami-bucket", "minio.storage.svc:9000", prefix="tenant-a")})
    add_bitnami(kube, "observability")
    cluster.grant(*discovery_rules("observability", [BITNAMI_SECRET]))

    discoverer = cluster.discoverer(["observability"], profiles={"store": {"add": ["upload"]}})
    targets = discoverer.discover()

    assert discoverer.problems == []
    ns, b, p = "observability", "bitnami-bucket", "tenant-a"
    assert summary(targets) == {
        (f"{ns}/thanos-compactor", "compactor", ns, "thanos-compactor", b, p),      # file at /conf
        (f"{ns}/thanos-storegateway", "store", ns, "thanos-storegateway", b, p),
        (f"{ns}/thanos-ruler", "rule", ns, "thanos-ruler", b, p),                   # /conf/objstore + items
        (f"{ns}/thanos-bucketweb", "bucket-web", ns, "thanos-bucketweb", b, p),
        (f"{ns}/thanos-receive", "receive", ns, "thanos-receive", b, p),            # env from secretKeyRef
    }  # not receive-distributor (env, no flag), not query
    by_name = {t.name: t for t in targets}
    # a MinIO endpoint names no region: the S3 client looks it up, so bucket_location is required
    assert by_name[f"{ns}/thanos-compactor"].required == PROFILES[Component.COMPACTOR] | {Operation.BUCKET_LOCATION}
    # the profile override from the discovery section applies to discovered stores
    assert Operation.UPLOAD in by_name[f"{ns}/thanos-storegateway"].required
    assert by_name[f"{ns}/thanos-storegateway"].s3.endpoint == "minio.storage.svc:9000"


def test_only_configured_namespaces_are_read(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("monitoring", KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml("a", AWS)})
    kube.add_secret("other", KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml("b", AWS)})
    add_kube_thanos(kube, "monitoring")
    add_kube_thanos(kube, "other")
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]), *discovery_rules("other",
                                                                                        [KUBE_THANOS_SECRET]))
    targets = cluster.discoverer(["monitoring"]).discover()
    assert {t.namespace for t in targets} == {"monitoring"} and len(targets) == 5
    assert not any("/namespaces/other/" in path for _, path, _ in cluster.requests_by_exporter())


def test_query_alone_gives_no_target_and_reads_no_secret(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("monitoring", KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml("a", AWS)})
    add_query(kube, "monitoring")
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]))
    discoverer = cluster.discoverer(["monitoring"])
    assert discoverer.discover() == []
    assert discoverer.problems == []
    assert not any("/secrets/" in path for _, path, _ in cluster.requests_by_exporter())


def test_same_service_account_different_buckets_stay_apart(cluster: Cluster, kube: KubeApiEmulator) -> None:
    """Dedup only merges what is really the same check: one SA on two buckets is two targets."""
    kube.add_secret("monitoring", "bucket-a", {"objstore.yml": objstore_yaml("bucket-a", AWS)})
    kube.add_secret("monitoring", "bucket-b", {"objstore.yml": objstore_yaml("bucket-b", AWS)})
    for name, secret in (("store-a", "bucket-a"), ("store-b", "bucket-b"), ("store-a-replica", "bucket-a")):
        kube.add_statefulset("monitoring", name, labels={"app": name}, service_account_name="thanos-store",
                             containers=[{"name": "thanos", "args": ["store", "--objstore.config=$(OBJSTORE_CONFIG)"],
                                          "env": [{"name": "OBJSTORE_CONFIG", "valueFrom": {"secretKeyRef": {
                                              "name": secret, "key": "objstore.yml"}}}]}])
    cluster.grant(*discovery_rules("monitoring", ["bucket-a", "bucket-b"]))
    targets = cluster.discoverer(["monitoring"]).discover()
    assert {(t.name, t.s3.bucket) for t in targets} == {
        ("monitoring/store-a", "bucket-a"),    # store-a + store-a-replica: common name store-a
        ("monitoring/store-b", "bucket-b"),
    }


def _container(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "thanos", "image": "quay.io/thanos/thanos:v0.37.2", **fields}]


def test_other_argument_and_mount_forms(cluster: Cluster, kube: KubeApiEmulator) -> None:
    ns = "forms"
    kube.add_secret(ns, "cfg", {"config.yaml": objstore_yaml("subpath", AWS),
                                "objstore.yaml": objstore_yaml("projected", AWS),
                                "static.yaml": objstore_yaml("static", AWS, access_key="AKIAEXAMPLE",
                                                             secret_key="example-secret")})
    # `--flag value` form, /bin/thanos as command, a single file mounted with subPath, no serviceAccountName
    kube.add_statefulset(ns, "subpath-store", labels={"app": "x"}, volumes=[{"name": "c", "secret": {
        "secretName": "cfg"}}], containers=_container(
            command=["/bin/thanos"], args=["store", "--objstore.config-file", "/etc/thanos/objstore.yaml"],
            volumeMounts=[{"name": "c", "mountPath": "/etc/thanos/objstore.yaml", "subPath": "config.yaml"}]))
    # a shell wrapper and a projected volume
    kube.add_deployment(ns, "shell-compactor", labels={"app": "y"}, service_account_name="compactor", volumes=[
        {"name": "p", "projected": {"sources": [{"configMap": {"name": "irrelevant"}},
                                                {"secret": {"name": "cfg"}}]}}],
        containers=_container(command=["/bin/sh", "-c"],
                              args=["exec thanos compact --wait --objstore.config-file=/cfg/objstore.yaml"],
                              volumeMounts=[{"name": "p", "mountPath": "/cfg"}]))
    # static keys in the objstore config: Thanos uses them, so the probe does too
    kube.add_deployment(ns, "static-rule", labels={"app": "z"}, service_account_name="rule", containers=_container(
        args=["rule", "--objstore.config=$(CFG)"],
        env=[{"name": "CFG", "valueFrom": {"secretKeyRef": {"name": "cfg", "key": "static.yaml"}}}]))
    # the objstore config as a literal env value
    kube.add_deployment(ns, "literal-sidecar", labels={"app": "w"}, service_account_name="prom", containers=_container(
        args=["sidecar", "--objstore.config=$(CFG)"],
        env=[{"name": "CFG", "value": objstore_yaml("literal", AWS)}]))
    cluster.grant(*discovery_rules(ns, ["cfg"]))
    discoverer = cluster.discoverer([ns])
    targets = {t.name: t for t in discoverer.discover()}
    assert discoverer.problems == []
    assert {(n, t.component.value, t.service_account, t.s3.bucket) for n, t in targets.items()} == {
        (f"{ns}/subpath-store", "store", "default", "subpath"),
        (f"{ns}/shell-compactor", "compactor", "compactor", "projected"),
        (f"{ns}/static-rule", "rule", "rule", "static"),
        (f"{ns}/literal-sidecar", "sidecar", "prom", "literal"),
    }
    assert targets[f"{ns}/static-rule"].identity == ObjstoreConfigIdentity()
    assert isinstance(targets[f"{ns}/shell-compactor"].identity, KubernetesIdentity)


def test_non_s3_and_query_like_args_are_skipped_quietly(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("monitoring", "gcs", {"objstore.yml": "type: GCS\nconfig:\n  bucket: thanos\n"})
    kube.add_statefulset("monitoring", "thanos-store", labels={"app.kubernetes.io/name": "thanos-store"},
                         service_account_name="thanos-store", containers=_container(
                             args=["store", "--objstore.config=$(C)"],
                             env=[{"name": "C", "valueFrom": {"secretKeyRef": {"name": "gcs",
                                                                               "key": "objstore.yml"}}}]))
    # labelled as a Thanos store, but the container runs query-frontend: the args win
    kube.add_deployment("monitoring", "mislabelled", labels={"app.kubernetes.io/name": "thanos-store"},
                        containers=_container(args=["query-frontend", "--objstore.config=$(C)"]))
    cluster.grant(*discovery_rules("monitoring", ["gcs"]))
    discoverer = cluster.discoverer(["monitoring"])
    assert discoverer.discover() == []
    assert discoverer.problems == []


def test_a_configured_target_name_wins(cluster: Cluster, kube: KubeApiEmulator) -> None:
    kube.add_secret("monitoring", KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml("a", AWS)})
    add_kube_thanos(kube, "monitoring")
    cluster.grant(*discovery_rules("monitoring", [KUBE_THANOS_SECRET]))
    targets = cluster.discoverer(["monitoring"]).discover(taken={"monitoring/thanos-compact"})
    names = {t.name for t in targets}
    assert "monitoring/thanos-compact" not in names
    assert "monitoring/thanos-compact-compactor" in names
