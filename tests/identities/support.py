"""Helpers for the `kubernetes` identity tests (moto tier here, Ceph RGW tier in tests/rgw/).

The exporter is always configured the normal way: `global.kubernetes.kubeconfig` points at a kubeconfig the
Kubernetes API emulator wrote, targets use `identity: {source: kubernetes, ...}`, and `exporter.app.run_once`
(or the probers it builds) runs the cycle over real HTTP. The emulator's Python API only seeds state.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config
from exporter.demo.kube_apiserver import EXPORTER_RULES, KubeApiEmulator, Rule
from exporter.metrics import ProbeCollector
from exporter.profiles import Operation
from exporter.result_store import ResultStore
from exporter.results import CycleResult, OperationResult
from exporter.targets import build_targets

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
AUDIENCE_ANNOTATION = "eks.amazonaws.com/audience"
EXPIRATION_ANNOTATION = "eks.amazonaws.com/token-expiration"


class MintedTokens:
    """Records every ServiceAccount token the emulator's issuer signs (kept in memory, never printed)."""

    def __init__(self, kube: KubeApiEmulator) -> None:
        self.tokens: list[str] = []
        issuer = kube.issuer
        original = issuer.mint

        def mint(*args: Any, **kwargs: Any) -> tuple[str, int]:
            token, exp = original(*args, **kwargs)
            self.tokens.append(token)
            return token, exp

        issuer.mint = mint  # type: ignore[method-assign]

    def claims(self) -> list[dict[str, Any]]:
        """The claims of every minted token (signature not checked: these are our own tokens)."""
        return [jwt.decode(t, options={"verify_signature": False}) for t in self.tokens]


class KubeAccess:
    """Bearer tokens + RBAC + kubeconfig files for the exporter's own identity on the emulated cluster."""

    def __init__(self, kube: KubeApiEmulator, directory: Path) -> None:
        self.kube = kube
        self.directory = directory
        self.bearer_tokens: list[str] = []

    def kubeconfig(self, user: str, rules: Sequence[Rule] = EXPORTER_RULES) -> Path:
        """A kubeconfig for a new exporter user holding `rules` (the shipped ClusterRole by default)."""
        token = f"{user}-{secrets.token_urlsafe(24)}"
        self.kube.add_token(token, user)
        if rules:
            self.kube.grant(user, *rules)
        self.bearer_tokens.append(token)
        return self.kube.write_kubeconfig(self.directory / f"kubeconfig-{user}-{secrets.token_hex(4)}", token,
                                          user=user)


def token_requests(kube: KubeApiEmulator, namespace: str, service_account: str | None = None) -> list[int]:
    """Statuses of the TokenRequests (POST .../serviceaccounts/<sa>/token) the emulator served."""
    prefix = f"/api/v1/namespaces/{namespace}/serviceaccounts/"
    out = []
    for rec in kube.requests:
        if rec.method != "POST" or not rec.path.startswith(prefix) or not rec.path.endswith("/token"):
            continue
        if service_account is None or rec.path == f"{prefix}{service_account}/token":
            out.append(rec.status)
    return out


def kube_target(name: str, component: str, namespace: str, service_account: str, bucket: str = "b",
                **identity: Any) -> dict[str, Any]:
    return {"name": name, "component": component, "namespace": namespace, "service_account": service_account,
            "bucket": bucket, "identity": {"source": "kubernetes", **identity}}


def ops(result: CycleResult) -> dict[Operation, OperationResult]:
    return {o.operation: o for o in result.operations}


def failed(result: CycleResult) -> dict[Operation, str]:
    """Failed operations → reason value (empty when everything passed)."""
    return {o.operation: (o.reason.value if o.reason else "?") for o in result.operations if not o.success}


def explain(result: CycleResult) -> str:
    lines = [f"{result.target}: identity ok={result.identity.ok} reason={result.identity.reason} "
             f"source={result.identity.source!r} principal={result.identity.principal!r} {result.identity.message}"]
    lines += [f"  {o.operation.value}: success={o.success} required={o.required} reason={o.reason} {o.detail}"
              for o in result.operations]
    return "\n".join(lines)


def scrape(config: Config, results: Iterable[CycleResult]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Render the results through the exporter's own collector and parse the exposition text back."""
    store = ResultStore(config.global_.interval)
    store.set_targets(build_targets(config))
    for result in results:
        store.record(result)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(store))
    return parse_metrics(generate_latest(registry).decode())


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def series(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> list[
        tuple[dict[str, str], float]]:
    return [(lab, v) for lab, v in metrics.get(name, []) if all(lab.get(k) == want for k, want in labels.items())]


@contextmanager
def moto_unsigned_web_identity() -> Iterator[None]:
    """Let the in-process moto server accept the *unsigned* AssumeRoleWithWebIdentity, as AWS does.

    botocore sends AWIWI without a signature; moto with IAM enforcement tries to authenticate every action
    and answers 500 (reference: local-backends.md §A). This restores AWS's behaviour for that one action; it
    still never validates the token or the trust policy, so those failures are tested on Ceph RGW.
    """
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def patched(self: Any, iam_request_cls: Any, resource: str = "*") -> Any:
        if "Authorization" not in self.headers and self._get_action() == "AssumeRoleWithWebIdentity":
            return None
        return original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = patched  # type: ignore[method-assign]
    try:
        yield
    finally:
        ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]
