"""A running exporter with discovery only (no configured targets): probes every discovered workload as its
ServiceAccount on moto (IAM enforced), picks up a new workload on its own refresh loop, and drops a deleted one's
series from /metrics. Also: with the objstore Secrets forbidden it keeps serving and logs why."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter, start_exporter
from exporter.config import Config, parse_config
from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.policies import component_policy
from exporter.profiles import PROFILES, Component
from tests.support.env import PROBE_DIR, ProbeEnv, static

from .conftest import Cluster, discovery_rules, identity_rules
from .manifests import KUBE_THANOS_KEY, KUBE_THANOS_SECRET, kube_thanos_container, kube_thanos_labels, objstore_yaml

NS = "monitoring"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
Series = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int) -> Series:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except urllib.error.HTTPError:
        return False


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def success(series: Series, target: str) -> dict[str, float]:
    return {lab["operation"]: v for lab, v in series.get("objstore_permission_probe_success", [])
            if lab["target"] == target}


def targets_in(series: Series) -> set[str]:
    return {lab["target"] for samples in series.values() for lab, _ in samples if "target" in lab}


class Workloads:
    """kube-thanos workloads whose ServiceAccounts carry their moto role (IRSA), on a fresh bucket."""

    def __init__(self, env: ProbeEnv, kube: KubeApiEmulator) -> None:
        self.env, self.kube = env, kube
        kube.add_secret(NS, KUBE_THANOS_SECRET, {KUBE_THANOS_KEY: objstore_yaml(env.bucket, env.emu.endpoint)})

    def add(self, component: Component, name: str, subcommand: str) -> None:
        arn = self.env.role(name, component_policy(component, self.env.bucket))
        self.kube.add_service_account(NS, name, annotations={ROLE_ANNOTATION: arn})
        self.kube.add_statefulset(NS, name, labels=kube_thanos_labels(name, "x"), service_account_name=name,
                                  containers=[kube_thanos_container(name, [subcommand])])


def discovery_config(env: ProbeEnv, cluster: Cluster, refresh: str = "5m") -> Config:
    return parse_config({
        "global": {"interval": "60s", "timeout": "5s", "jitter": "0s", "probe_dir": PROBE_DIR,
                   "janitor": {"identity": static(*env.janitor_keys)},
                   "kubernetes": {"kubeconfig": str(cluster.kubeconfig)}},
        "discovery": {"kubernetes": {"enabled": True, "namespaces": [NS], "refresh_interval": refresh,
                                     "identity": {"fallback": "none"}}},
    })


@contextmanager
def running(config: Config) -> Iterator[Exporter]:
    exporter = start_exporter(config, "127.0.0.1:0")
    try:
        yield exporter
    finally:
        exporter.stop()


def test_refresh_adds_new_and_drops_deleted_workloads(env: ProbeEnv, cluster: Cluster, kube: KubeApiEmulator) -> None:
    workloads = Workloads(env, kube)
    workloads.add(Component.COMPACTOR, "thanos-compact", "compact")
    workloads.add(Component.STORE, "thanos-store", "store")
    cluster.grant(*discovery_rules(NS, [KUBE_THANOS_SECRET]), *identity_rules(NS))

    with running(discovery_config(env, cluster, refresh="10s")) as exporter:
        port = exporter.web.port
        wait_for(lambda: ready(port), 30, "/-/ready")
        series = scrape(port)
        assert targets_in(series) == {f"{NS}/thanos-compact", f"{NS}/thanos-store"}
        for name, component in (("thanos-compact", Component.COMPACTOR), ("thanos-store", Component.STORE)):
            ok = success(series, f"{NS}/{name}")
            required = PROFILES[component]
            assert {op for op, v in ok.items() if v == 1} >= {op.value for op in required}, ok
        info = {lab["target"]: lab for lab, _ in series["objstore_permission_target_info"]}
        assert info[f"{NS}/thanos-store"]["service_account"] == "thanos-store"
        assert info[f"{NS}/thanos-store"]["bucket"] == env.bucket
        ident = {lab["target"]: lab["source"] for lab, _ in series["objstore_permission_identity_info"]}
        assert ident == {f"{NS}/thanos-compact": "kubernetes_irsa", f"{NS}/thanos-store": "kubernetes_irsa"}

        # a new workload: the refresh loop (every 10s) picks it up, and it is probed right away
        workloads.add(Component.RULE, "thanos-rule", "rule")
        ok = wait_for(lambda: success(scrape(port), f"{NS}/thanos-rule"), 30, "the new rule target's series")
        assert {op for op, v in ok.items() if v == 1} >= {op.value for op in PROFILES[Component.RULE]}

        # a deleted workload: after the next refresh not one of its series is left
        kube.delete("statefulsets", NS, "thanos-compact")
        assert exporter.discovery is not None
        exporter.discovery.refresh()
        after = scrape(port)
        assert targets_in(after) == {f"{NS}/thanos-store", f"{NS}/thanos-rule"}
        assert exporter.scheduler.scheduler.get_job(f"{NS}/thanos-compact") is None
        assert {p.target.name for p in exporter.scheduler.probers} == {f"{NS}/thanos-store", f"{NS}/thanos-rule"}


def test_unchanged_targets_keep_their_prober(env: ProbeEnv, cluster: Cluster, kube: KubeApiEmulator) -> None:
    """A refresh that finds the same workloads changes nothing (no new credentials, no rescheduling)."""
    workloads = Workloads(env, kube)
    workloads.add(Component.STORE, "thanos-store", "store")
    cluster.grant(*discovery_rules(NS, [KUBE_THANOS_SECRET]), *identity_rules(NS))
    with running(discovery_config(env, cluster)) as exporter:
        wait_for(lambda: ready(exporter.web.port), 30, "/-/ready")
        [before] = exporter.scheduler.probers
        assert exporter.discovery is not None
        exporter.discovery.refresh()
        [after] = exporter.scheduler.probers
        assert after is before


def test_forbidden_secrets_keep_the_exporter_serving(env: ProbeEnv, cluster: Cluster, kube: KubeApiEmulator,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    Workloads(env, kube).add(Component.STORE, "thanos-store", "store")
    cluster.grant(discovery_rules(NS, [])[0], *identity_rules(NS))  # list workloads, but no Secret
    with caplog.at_level(logging.WARNING, logger="exporter.discovery"), \
            running(discovery_config(env, cluster)) as exporter:
        port = exporter.web.port
        wait_for(lambda: ready(port), 30, "/-/ready with nothing discovered")
        series = scrape(port)
        assert targets_in(series) == set()
        assert "objstore_permission_build_info" in series
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/healthy", timeout=5) as answer:
            assert answer.status == 200
    assert any(f"reading Secret {NS}/{KUBE_THANOS_SECRET}: forbidden" in r.getMessage() for r in caplog.records)
