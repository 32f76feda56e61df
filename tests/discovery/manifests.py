"""Workload manifests as kube-thanos, the Bitnami chart and prometheus-operator render them (trimmed to what
discovery reads: labels, serviceAccountName, container command/args/env/volumeMounts, volumes)."""

from __future__ import annotations

from typing import Any

from exporter.demo.kube_apiserver import KubeApiEmulator

KUBE_THANOS_SECRET, KUBE_THANOS_KEY = "thanos-objectstorage", "thanos.yaml"
BITNAMI_RELEASE = "thanos"
BITNAMI_SECRET, BITNAMI_KEY = f"{BITNAMI_RELEASE}-objstore-secret", "objstore.yml"
IMAGE = "quay.io/thanos/thanos:v0.37.2"


def objstore_yaml(bucket: str, endpoint: str, prefix: str = "", **extra: Any) -> str:
    config = {"bucket": bucket, "endpoint": endpoint, "insecure": True, **extra}
    lines = ["type: S3", "config:"] + [f"  {k}: {str(v).lower() if isinstance(v, bool) else v}"
                                      for k, v in config.items()]
    if prefix:
        lines.append(f"prefix: {prefix}")
    return "\n".join(lines) + "\n"


# ---- kube-thanos ---------------------------------------------------------------------------------------------

def kube_thanos_labels(name: str, component: str, instance: str | None = None) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/instance": instance or name, "app.kubernetes.io/version": "v0.37.2"}


def objstore_env(secret: str = KUBE_THANOS_SECRET, key: str = KUBE_THANOS_KEY) -> list[dict[str, Any]]:
    return [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "OBJSTORE_CONFIG", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}]


def kube_thanos_container(name: str, subcommand: list[str], *extra_args: str, objstore: bool = True) -> dict[str, Any]:
    args = [*subcommand, "--log.level=info", "--log.format=logfmt", *extra_args]
    container: dict[str, Any] = {"name": name, "image": IMAGE, "args": args, "env": objstore_env()}
    if objstore:
        args.append("--objstore.config=$(OBJSTORE_CONFIG)")
    return container


def add_kube_thanos(kube: KubeApiEmulator, ns: str) -> None:
    """compact, store (two shards), receive ingestors + router, rule, bucket web, query: like examples/all."""
    kube.add_statefulset(ns, "thanos-compact", labels=kube_thanos_labels("thanos-compact", "database-compactor"),
                         service_account_name="thanos-compact",
                         containers=[kube_thanos_container("thanos-compact", ["compact"], "--wait",
                                                           "--data-dir=/var/thanos/compact")])
    for shard in (0, 1):
        kube.add_statefulset(
            ns, f"thanos-store-{shard}",
            labels={**kube_thanos_labels("thanos-store", "object-store-gateway", f"thanos-store-{shard}"),
                    "store.thanos.io/shard": f"shard-{shard}"},
            service_account_name="thanos-store",
            containers=[kube_thanos_container("thanos-store", ["store"], "--data-dir=/var/thanos/store",
                                              "--ignore-deletion-marks-delay=24h")])
    kube.add_statefulset(ns, "thanos-receive-ingestor-default",
                         labels=kube_thanos_labels("thanos-receive", "database-write-hashring"),
                         service_account_name="thanos-receive",
                         containers=[kube_thanos_container("thanos-receive", ["receive"], "--tsdb.path=/var/thanos")])
    router = kube_thanos_labels("thanos-receive", "thanos-receive-router")
    kube.add_deployment(ns, "thanos-receive-router", labels=router,
                        service_account_name="thanos-receive-router",
                        containers=[kube_thanos_container("thanos-receive", ["receive"],
                                                          "--receive.hashrings-file=/var/lib/thanos-receive/h.json",
                                                          objstore=False)])
    kube.add_statefulset(ns, "thanos-rule", labels=kube_thanos_labels("thanos-rule", "rule-evaluation-engine"),
                         service_account_name="thanos-rule",
                         containers=[kube_thanos_container("thanos-rule", ["rule"], "--data-dir=/var/thanos/rule")])
    bucket = kube_thanos_labels("thanos-bucket", "object-store-bucket-debugging")
    kube.add_deployment(ns, "thanos-bucket", labels=bucket,
                        service_account_name="thanos-bucket",
                        containers=[kube_thanos_container("thanos-bucket", ["tools", "bucket", "web"],
                                                          "--http-address=0.0.0.0:10902")])
    add_query(kube, ns)


def add_query(kube: KubeApiEmulator, ns: str) -> None:
    """Query has no bucket; kube-thanos renders it without objstore flags (its env is there to tempt us)."""
    kube.add_deployment(ns, "thanos-query", labels=kube_thanos_labels("thanos-query", "query-layer"),
                        service_account_name="thanos-query",
                        containers=[{"name": "thanos-query", "image": IMAGE, "env": objstore_env(),
                                     "args": ["query", "--endpoint=dnssrv+_grpc._tcp.thanos-store.svc"]}])


def add_prometheus(kube: KubeApiEmulator, ns: str, name: str = "k8s", service_account: str = "prometheus-k8s") -> None:
    """A prometheus-operator Prometheus StatefulSet with `spec.thanos.objectStorageConfig` set."""
    labels = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": name,
              "app.kubernetes.io/managed-by": "prometheus-operator", "operator.prometheus.io/name": name,
              "prometheus": name}
    kube.add_statefulset(ns, f"prometheus-{name}", labels=labels, service_account_name=service_account, replicas=2,
                         containers=[
                             {"name": "prometheus", "image": "quay.io/prometheus/prometheus:v3.1.0",
                              "args": ["--config.file=/etc/prometheus/config_out/prometheus.env.yaml",
                                       "--storage.tsdb.path=/prometheus"]},
                             {"name": "config-reloader", "image": "quay.io/prometheus-operator/config-reloader",
                              "command": ["/bin/prometheus-config-reloader"], "args": ["--listen-address=:8080"]},
                             {"name": "thanos-sidecar", "image": IMAGE, "env": objstore_env()[1:],
                              "args": ["sidecar", "--prometheus.url=http://localhost:9090/",
                                       "--grpc-address=:10901", "--http-address=:10902",
                                       "--objstore.config=$(OBJSTORE_CONFIG)", "--tsdb.path=/prometheus"]},
                         ])


# ---- Bitnami chart ---------------------------------------------------------------------------------------------

def bitnami_labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "thanos", "app.kubernetes.io/instance": BITNAMI_RELEASE,
            "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/component": component,
            "helm.sh/chart": "thanos-15.7.25"}


def _bitnami_file_container(name: str, subcommand: list[str], mount: str, path: str) -> dict[str, Any]:
    return {"name": name, "image": "docker.io/bitnami/thanos:0.37.2",
            "args": [*subcommand, "--log.level=info", "--log.format=logfmt", f"--objstore.config-file={path}"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"},
                             {"name": "objstore-config", "mountPath": mount}]}


def _objstore_volume(items: bool = False) -> list[dict[str, Any]]:
    secret: dict[str, Any] = {"secretName": BITNAMI_SECRET}
    if items:
        secret["items"] = [{"key": BITNAMI_KEY, "path": "objstore.yml"}]
    return [{"name": "data", "emptyDir": {}}, {"name": "objstore-config", "secret": secret}]


def add_bitnami(kube: KubeApiEmulator, ns: str) -> None:
    """compactor, storegateway, ruler (mounted at /conf/objstore with items), bucketweb, receive (env),
    receive-distributor (env but no flag), query: as the chart renders them."""
    r = BITNAMI_RELEASE
    kube.add_deployment(ns, f"{r}-compactor", labels=bitnami_labels("compactor"),
                        service_account_name=f"{r}-compactor", volumes=_objstore_volume(),
                        containers=[_bitnami_file_container("compactor", ["compact"], "/conf", "/conf/objstore.yml")])
    kube.add_statefulset(ns, f"{r}-storegateway", labels=bitnami_labels("storegateway"),
                         service_account_name=f"{r}-storegateway", volumes=_objstore_volume(),
                         containers=[_bitnami_file_container("storegateway", ["store"], "/conf",
                                                             "/conf/objstore.yml")])
    kube.add_statefulset(ns, f"{r}-ruler", labels=bitnami_labels("ruler"),
                         service_account_name=f"{r}-ruler", volumes=_objstore_volume(items=True),
                         containers=[_bitnami_file_container("ruler", ["rule"], "/conf/objstore",
                                                             "/conf/objstore/objstore.yml")])
    kube.add_deployment(ns, f"{r}-bucketweb", labels=bitnami_labels("bucketweb"),
                        service_account_name=f"{r}-bucketweb", volumes=_objstore_volume(),
                        containers=[_bitnami_file_container("bucketweb", ["tools", "bucket", "web"], "/conf",
                                                            "/conf/objstore.yml")])
    env = objstore_env(BITNAMI_SECRET, BITNAMI_KEY)[1:]
    kube.add_statefulset(ns, f"{r}-receive", labels=bitnami_labels("receive"), service_account_name=f"{r}-receive",
                         containers=[{"name": "receive", "image": "docker.io/bitnami/thanos:0.37.2", "env": env,
                                      "args": ["receive", "--tsdb.path=/var/thanos/receive",
                                               "--objstore.config=$(OBJSTORE_CONFIG)"]}])
    kube.add_deployment(ns, f"{r}-receive-distributor", labels=bitnami_labels("receive-distributor"),
                        service_account_name=f"{r}-receive",
                        containers=[{"name": "receive", "image": "docker.io/bitnami/thanos:0.37.2", "env": env,
                                     "args": ["receive", "--receive.hashrings-file=/var/lib/thanos-receive/h.json"]}])
    kube.add_deployment(ns, f"{r}-query", labels=bitnami_labels("query"), service_account_name=f"{r}-query",
                        containers=[{"name": "query", "image": "docker.io/bitnami/thanos:0.37.2",
                                     "args": ["query", "--endpoint=dnssrv+_grpc._tcp.thanos-storegateway"]}])
