"""The embedded default: a realistic Thanos setup on the emulator, reproducing the motivating incident.

One bucket `thanos`, one IAM role per component with a least-privilege policy; the compactor's role lacks
s3:DeleteObject (the incident: compaction works for days, then deleting marked blocks fails). The exporter
assumes each role from its own user, as it would across accounts, and a separate janitor user keeps the
canary, scoped to the probe dir.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from exporter.config import Config, load_config
from exporter.demo.emulator import Emulator, start_emulator
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
INCIDENT = {Component.COMPACTOR: frozenset({Operation.DELETE})}
ENV_PREFIX = "OPE_DEMO_"


def role_policy(component: Component, healthy: bool = False) -> dict[str, Any]:
    """The component's policy as deployed in the demo (`healthy=True` gives the fixed one)."""
    without = frozenset() if healthy else INCIDENT.get(component, frozenset())
    return component_policy(component, BUCKET, without=without)


def setup(emu: Emulator, interval: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create bucket, users and roles; return (exporter config, emulator info)."""
    emu.client("s3").create_bucket(Bucket=BUCKET)
    exporter_key = emu.create_user(
        "objstore-permission-exporter",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Resource": f"arn:aws:iam::{emu.account_id}:role/thanos-*"}]},
    )
    janitor_key = emu.create_user("objstore-permission-janitor", janitor_policy(BUCKET, "", PROBE_DIR))
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": f"arn:aws:iam::{emu.account_id}:user/objstore-permission-exporter"}}]}
    os.environ[ENV_PREFIX + "EXPORTER_ACCESS_KEY_ID"], os.environ[ENV_PREFIX + "EXPORTER_SECRET_ACCESS_KEY"] = \
        exporter_key
    os.environ[ENV_PREFIX + "JANITOR_ACCESS_KEY_ID"], os.environ[ENV_PREFIX + "JANITOR_SECRET_ACCESS_KEY"] = \
        janitor_key
    exporter_base = {"source": "static",
                     "access_key_id": {"env": ENV_PREFIX + "EXPORTER_ACCESS_KEY_ID"},
                     "secret_access_key": {"env": ENV_PREFIX + "EXPORTER_SECRET_ACCESS_KEY"}}
    targets, info_components = [], {}
    for component, service_account in COMPONENTS:
        role = f"thanos-{component.value}"
        arn = emu.create_role(role, trust, POLICY_NAME, role_policy(component))
        info_components[component.value] = {"role_name": role, "role_arn": arn, "policy_name": POLICY_NAME}
        targets.append({
            "name": f"{NAMESPACE}/{service_account}",
            "component": component.value,
            "namespace": NAMESPACE,
            "service_account": service_account,
            "bucket": BUCKET,
            "identity": {"source": "assume_role", "role_arn": arn, "base": exporter_base},
            "expected_principal": arn,
        })
    config = {
        "global": {
            "interval": interval,
            "timeout": "5s",
            "jitter": "1s",
            "probe_dir": PROBE_DIR,
            "janitor": {"identity": {
                "source": "static",
                "access_key_id": {"env": ENV_PREFIX + "JANITOR_ACCESS_KEY_ID"},
                "secret_access_key": {"env": ENV_PREFIX + "JANITOR_SECRET_ACCESS_KEY"}}},
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
        "components": info_components,
    }
    return config, info


@contextmanager
def start_demo(interval: str = "15s", info_file: Path | None = None) -> Iterator[tuple[Config, Path]]:
    """Start the emulator, set up the scenario, enforce IAM, and yield the validated exporter config."""
    emu = start_emulator()
    try:
        config_data, info = setup(emu, interval)
        emu.enforce_iam(True)
        with tempfile.TemporaryDirectory(prefix="ope-demo-") as tmp:
            path = Path(tmp) / "objstore-permission-exporter.yml"
            path.write_text(yaml.safe_dump(config_data, sort_keys=False))
            if info_file is not None:
                info_file.write_text(json.dumps(info, indent=2))
            yield load_config(path), path
    finally:
        emu.stop()
