"""`check` probes discovered targets too: the CLI over real HTTP against the Kubernetes API emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.profiles import Component
from tests.discovery.conftest import Cluster, discovery_rules, identity_rules
from tests.discovery.test_refresh import KUBE_THANOS_SECRET, NS, PROBE_DIR, Workloads
from tests.support.env import ProbeEnv, static


def test_check_includes_discovered_targets(env: ProbeEnv, cluster: Cluster, kube: KubeApiEmulator,
                                           tmp_path: Path) -> None:
    workloads = Workloads(env, kube)
    workloads.add(Component.STORE, "thanos-store", "store")
    cluster.grant(*discovery_rules(NS, [KUBE_THANOS_SECRET]), *identity_rules(NS))
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({
        "global": {"timeout": "5s", "jitter": "0s", "probe_dir": PROBE_DIR,
                   "janitor": {"identity": static(*env.janitor_keys)},
                   "kubernetes": {"kubeconfig": str(cluster.kubeconfig)}},
        "discovery": {"kubernetes": {"enabled": True, "namespaces": [NS]}},
    }))
    run = subprocess.run([sys.executable, "-m", "exporter.cli", "check", f"--config.file={config}", "--output=json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    [target] = json.loads(run.stdout)["targets"]
    assert target["target"] == f"{NS}/thanos-store" and target["healthy"]
    assert target["identity"]["source"] == "kubernetes_irsa"
