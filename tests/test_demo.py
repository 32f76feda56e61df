"""The embedded default, through the CLI in a subprocess: every component probed through its ServiceAccount
(IRSA on the emulators), and the incident: the compactor's ServiceAccount has no role annotation, so it runs
as the node, which lacks s3:DeleteObject."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from prometheus_client.parser import text_string_to_metric_families

CLI = [sys.executable, "-m", "exporter.cli", "demo"]
COMPONENTS = {"compactor": "thanos-compact", "store": "thanos-store", "receive": "thanos-receive",
              "rule": "thanos-rule", "sidecar": "prometheus-k8s"}
Series = list[tuple[str, dict[str, str], float]]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def test_demo_once_json_shows_the_incident_and_exits_1(tmp_path: Path) -> None:
    info_file = tmp_path / "info.json"
    started = time.monotonic()
    proc = subprocess.run([*CLI, "--once", "--output=json", f"--emulator-info-file={info_file}"],
                          capture_output=True, text=True, timeout=120, env=_env())
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    out = {t["component"]: t for t in json.loads(proc.stdout)["targets"]}
    assert set(out) == set(COMPONENTS)
    info = json.loads(info_file.read_text())
    account = info["components"]["store"]["role_arn"].split(":")[4]

    compactor = out["compactor"]
    assert compactor["target"] == "monitoring/thanos-compact"
    assert compactor["identity"] == {"ok": False, "reason": "no_role_annotation", "source": "node_fallback",
                                     "principal": f"arn:aws:iam::{account}:user/node"}
    ops = {o["operation"]: o for o in compactor["operations"]}
    assert ops["delete"]["required"] and not ops["delete"]["success"]
    assert ops["delete"]["reason"] == "access_denied"
    assert [o for o in compactor["operations"] if o["required"] and not o["success"]] == [ops["delete"]]
    assert not compactor["healthy"]

    for component, service_account in COMPONENTS.items():
        if component == "compactor":
            continue
        t = out[component]
        assert t["target"] == f"monitoring/{service_account}"
        assert t["identity"] == {"ok": True, "reason": None, "source": "kubernetes_irsa",
                                 "principal": f"arn:aws:sts::{account}:assumed-role/thanos-{component}"}
        required = [o for o in t["operations"] if o["required"]]
        assert required and all(o["success"] for o in required), (component, required)
        assert t["healthy"]
    # the emulators are gone once the command has exited
    assert not _reachable(info["url"]) and not _reachable(info["kubernetes"]["url"] + "/version")
    print(f"demo --once took {elapsed:.1f}s")

    # the info file names, per component, the IAM policy that really governs it
    assert {"url", "endpoint", "region", "bucket", "probe_dir", "admin", "components"} <= set(info)
    assert set(info["admin"]) == {"access_key_id", "secret_access_key"}
    assert set(info["components"]) == set(COMPONENTS)
    for component, entry in info["components"].items():
        assert {"role_name", "role_arn", "policy_name", "effective_policy", "target"} <= set(entry)
        if component == "compactor":
            assert entry["role_annotated"] is False
            assert entry["effective_policy"] == {"kind": "user", "name": entry["node_user"],
                                                 "policy_name": entry["node_policy_name"]}
        else:
            assert entry["role_annotated"] is True
            assert entry["effective_policy"] == {"kind": "role", "name": entry["role_name"],
                                                 "policy_name": entry["policy_name"]}


@contextmanager
def serving(tmp_path: Path, interval: str) -> Iterator[tuple[str, dict[str, Any], subprocess.Popen[str]]]:
    port = _free_port()
    info_file = tmp_path / "info.json"
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen([*CLI, f"--web.listen-address=127.0.0.1:{port}", f"--probe.interval={interval}",
                             f"--emulator-info-file={info_file}"], stdout=log, stderr=subprocess.STDOUT,
                            text=True, env=_env())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.HTTPError, OSError):
                pass
            assert time.monotonic() < deadline, "demo never became ready"
            time.sleep(0.2)
        yield base, json.loads(info_file.read_text()), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def scrape(base: str) -> Series:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def value(series: Series, name: str, **labels: str) -> float:
    found = [v for n, lab, v in series if n == name and all(lab.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_demo_serves_the_incident_on_metrics(tmp_path: Path) -> None:
    with serving(tmp_path, "3s") as (base, info, proc):
        with urllib.request.urlopen(f"{base}/-/healthy", timeout=5) as answer:
            assert answer.status == 200
        series = scrape(base)
        compactor = {"target": "monitoring/thanos-compact", "component": "compactor"}
        assert value(series, "objstore_permission_probe_success", operation="delete", **compactor) == 0
        assert value(series, "objstore_permission_probe_failures_total", operation="delete",
                     reason="access_denied", **compactor) >= 1
        assert value(series, "objstore_permission_identity_success", **compactor) == 0
        assert value(series, "objstore_permission_identity_failures_total", reason="no_role_annotation",
                     **compactor) >= 1
        assert value(series, "objstore_permission_identity_info", source="node_fallback", **compactor) == 1

        required = [(lab["target"], lab["operation"]) for n, lab, v in series
                    if n == "objstore_permission_probe_required" and v == 1]
        assert {t for t, _ in required} == {f"monitoring/{sa}" for sa in COMPONENTS.values()}
        for target, operation in required:
            if (target, operation) != ("monitoring/thanos-compact", "delete"):
                assert value(series, "objstore_permission_probe_success", target=target, operation=operation) == 1
        for component, sa in COMPONENTS.items():
            if component != "compactor":
                target = f"monitoring/{sa}"
                assert value(series, "objstore_permission_identity_success", target=target) == 1
                assert value(series, "objstore_permission_identity_info", target=target,
                             source="kubernetes_irsa") == 1

        # The info file's effective_policy is what governs the compactor: granting delete there turns it green.
        effective = info["components"]["compactor"]["effective_policy"]
        iam = boto3.client("iam", endpoint_url=info["url"], region_name=info["region"],
                           aws_access_key_id=info["admin"]["access_key_id"],
                           aws_secret_access_key=info["admin"]["secret_access_key"])
        doc = iam.get_user_policy(UserName=effective["name"], PolicyName=effective["policy_name"])["PolicyDocument"]
        policy = json.loads(doc) if isinstance(doc, str) else doc
        policy["Statement"].append({"Effect": "Allow", "Action": "s3:DeleteObject",
                                    "Resource": f"arn:aws:s3:::{info['bucket']}/*"})
        iam.put_user_policy(UserName=effective["name"], PolicyName=effective["policy_name"],
                            PolicyDocument=json.dumps(policy))
        deadline = time.monotonic() + 30
        while value(scrape(base), "objstore_permission_probe_success", operation="delete", **compactor) != 1:
            assert time.monotonic() < deadline, "granting delete on the node policy did not turn delete green"
            time.sleep(0.5)
        # still running as the node: the identity finding does not go away with the permission
        assert value(scrape(base), "objstore_permission_identity_success", **compactor) == 0
    assert proc.returncode == 0
    assert not _reachable(info["url"])

