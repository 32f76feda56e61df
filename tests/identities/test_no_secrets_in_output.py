"""No token or secret in any log line, metric or `check` output, even at debug level.

The real CLI runs in a subprocess (`serve --log.level=debug` in logfmt and in json, and `check --output=json`)
with Kubernetes identities that exercise every credential path: IRSA (ServiceAccount token → unsigned
AssumeRoleWithWebIdentity), EKS Pod Identity (token → EKS Auth, signed with the node's keys), the node
fallback (static keys) and a failing identity. Every secret that existed during the runs is collected from the
servers that issued it (the kube emulator's token issuer, moto's STS, the EKS Auth emulator) and from the
config's environment, and searched for in everything the exporter printed or served.
"""

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.demo.eks_auth import EksAuthEmulator
from exporter.demo.emulator import Emulator
from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.policies import component_policy
from exporter.profiles import Component, Operation
from tests.identities.conftest import KubeEnv
from tests.identities.support import KubeAccess, MintedTokens, parse_metrics

# overridable so the test itself can be checked against a deliberately leaky build
EXE = os.environ.get("OPE_EXPORTER_CLI") or str(Path(sys.executable).with_name("objstore-permission-exporter"))
CLUSTER = "thanos-prod"
ENV = "OPE_LEAKTEST_"


@pytest.fixture(scope="module")
def eks(emulator: Emulator, kube: KubeApiEmulator) -> Iterator[EksAuthEmulator]:
    with EksAuthEmulator({CLUSTER: kube.issuer_url}, emulator.url,
                         (emulator.admin_access_key_id, emulator.admin_secret_access_key)) as e:
        yield e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ref(name: str) -> dict[str, str]:
    return {"env": ENV + name}


def _setup(kenv: KubeEnv, eks: EksAuthEmulator, tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    """Config file, its environment (static keys), and the target names."""
    emu, ns = kenv.env.emu, kenv.ns
    kenv.service_account("thanos-compact", kenv.role(Component.COMPACTOR))  # IRSA
    kenv.service_account("thanos-store")  # Pod Identity (no annotation needed)
    kenv.service_account("thanos-rule")  # no annotation: node fallback
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"],
             "Principal": {"AWS": f"arn:aws:iam::{emu.account_id}:user/emulator-admin"}}]}
    store_role = emu.create_role(f"pi-store-{kenv.env.tag}", trust, "p",
                                 component_policy(Component.STORE, kenv.env.bucket))
    eks.add_association(CLUSTER, ns, "thanos-store", store_role)
    node_keys = emu.create_user(f"node-{kenv.env.tag}", component_policy(
        Component.RULE, kenv.env.bucket, without=frozenset({Operation.UPLOAD_MULTIPART})))
    environ = {ENV + "NODE_ID": node_keys[0], ENV + "NODE_SECRET": node_keys[1],
               ENV + "JANITOR_ID": kenv.env.janitor_keys[0], ENV + "JANITOR_SECRET": kenv.env.janitor_keys[1]}
    node = {"source": "static", "access_key_id": _ref("NODE_ID"), "secret_access_key": _ref("NODE_SECRET")}

    def target(sa: str, component: str, **identity: Any) -> dict[str, Any]:
        return {"name": f"{ns}/{sa}", "component": component, "namespace": ns, "service_account": sa,
                "bucket": "b", "identity": {"source": "kubernetes", **identity}}

    targets = [
        target("thanos-compact", "compactor"),
        target("thanos-store", "store", mode="pod_identity", cluster_name=CLUSTER, eks_auth_endpoint=eks.url,
               node_identity=node),
        target("thanos-rule", "rule", fallback="node", node_identity=node),
        target("thanos-missing", "store"),
    ]
    data = kenv.env.config_dict(targets, kubernetes={"kubeconfig": str(kenv.kubeconfig)})
    data["global"]["janitor"] = {"identity": {"source": "static", "access_key_id": _ref("JANITOR_ID"),
                                              "secret_access_key": _ref("JANITOR_SECRET")}}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return path, environ, [t["name"] for t in targets]


def _serve(config: Path, environ: dict[str, str], fmt: str, names: list[str]) -> tuple[str, str]:
    """Run `serve` until every target has completed a cycle; return (stderr, /metrics)."""
    port = _free_port()
    proc = subprocess.Popen(
        [EXE, "serve", f"--config.file={config}", "--log.level=debug", f"--log.format={fmt}",
         f"--web.listen-address=127.0.0.1:{port}"],
        env={**os.environ, **environ}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                    metrics = answer.read().decode()
            except (urllib.error.URLError, OSError):
                metrics = ""
            done = {s[0]["target"] for s in parse_metrics(metrics).get(
                "objstore_permission_last_probe_timestamp_seconds", [])} if metrics else set()
            if done >= set(names):
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    stderr = err.decode()
    assert metrics and all(f'target="{n}"' in metrics for n in names), stderr[-3000:]
    return stderr, metrics


def _issued_secrets(minted: MintedTokens, eks: EksAuthEmulator, access: KubeAccess,
                    environ: dict[str, str]) -> dict[str, str]:
    """name → secret, for everything that must never be printed."""
    from moto.sts.models import sts_backends

    out: dict[str, str] = {}
    for i, token in enumerate(minted.tokens):
        _, payload, signature = token.split(".")
        out[f"jwt[{i}]"] = token
        out[f"jwt[{i}].payload"] = payload
        out[f"jwt[{i}].signature"] = signature
    for account in list(sts_backends):
        for region in list(sts_backends[account]):
            for j, role in enumerate(sts_backends[account][region].assumed_roles):
                out[f"moto[{account}/{region}/{j}].secret"] = role.secret_access_key
                out[f"moto[{account}/{region}/{j}].session_token"] = role.session_token
    for k, secret in enumerate(eks.issued_secrets()):
        if len(secret) >= 16 and not secret.startswith(("ASIA", "AKIA", "FSIA")):  # skip access key ids
            out[f"eks-auth[{k}]"] = secret
    for k, token in enumerate(access.bearer_tokens):
        out[f"kube-bearer[{k}]"] = token
    out.update({name: value for name, value in environ.items() if name.endswith("SECRET")})
    return out


def _leaks(secrets: dict[str, str], text: str) -> list[str]:
    return sorted(name for name, secret in secrets.items() if secret and secret in text)


def test_no_token_or_secret_in_logs_metrics_or_check_output(
    kenv: KubeEnv, eks: EksAuthEmulator, minted: MintedTokens, access: KubeAccess, tmp_path: Path
) -> None:
    config, environ, names = _setup(kenv, eks, tmp_path)
    tokens_before = len(minted.tokens)

    outputs: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:  # the two servers run side by side
        served = dict(zip(("logfmt", "json"), pool.map(lambda f: _serve(config, environ, f, names),
                                                       ("logfmt", "json")), strict=True))
    for fmt, (stderr, metrics) in served.items():
        outputs[f"serve {fmt} stderr"], outputs[f"serve {fmt} /metrics"] = stderr, metrics
    check = subprocess.run([EXE, "check", f"--config.file={config}", "--output=json", "--log.level=debug"],
                           env={**os.environ, **environ}, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    outputs["check stdout"], outputs["check stderr"] = check.stdout.decode(), check.stderr.decode()

    # The runs really exercised every credential path (otherwise there would be nothing to leak).
    assert len(minted.tokens) - tokens_before >= 6, "3 runs x (IRSA + Pod Identity) tokens expected"
    assert len([r for r in eks.requests if r.status == 200]) >= 3
    assert check.returncode == 1, outputs["check stderr"][-2000:]  # the failing targets fail the check
    json.loads(outputs["check stdout"])
    assert all(f'"{n}"' in outputs["check stdout"] for n in names)
    for fmt in ("logfmt", "json"):
        stderr = outputs[f"serve {fmt} stderr"]
        assert "debug" in stderr and "no_role_annotation" in stderr and "service_account_not_found" in stderr
        if fmt == "json":
            assert all(json.loads(line)["level"] for line in stderr.splitlines() if line.startswith("{"))
        metrics = outputs[f"serve {fmt} /metrics"]
        assert 'source="kubernetes_irsa"' in metrics and 'source="kubernetes_pod_identity"' in metrics
        assert 'source="node_fallback"' in metrics

    secrets = _issued_secrets(minted, eks, access, environ)
    assert any(k.startswith("jwt[") for k in secrets) and any(k.startswith("moto[") for k in secrets)
    assert any(k.startswith("eks-auth[") for k in secrets) and any(k.startswith("kube-bearer[") for k in secrets)
    # positive control: the scan finds a secret when it is there
    probe = next(iter(secrets))
    assert probe in _leaks(secrets, f"msg=oops {secrets[probe]}")
    found = {where: _leaks(secrets, text) for where, text in outputs.items()}
    assert found == {where: [] for where in outputs}
