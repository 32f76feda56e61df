"""The `kubernetes` identity source against Ceph RGW, which validates web identity tokens for real.

RGW fetches the Kubernetes API emulator's OIDC discovery document and JWKS over HTTP, checks the x5c
certificate against the registered thumbprint, the RS256 signature, `exp`, the audience against the
provider's client IDs, and the role's trust conditions `<issuer host:port>:sub` and `:aud`
(local-backends.md §C). The exporter is configured as in production (`global.kubernetes.kubeconfig`,
`identity: {source: kubernetes}`) and runs `exporter.app.run_once`.

RGW 16 has no sts:GetCallerIdentity (HTTP 405): the principal is then the ARN STS named when it issued the
credentials (AssumedRoleUser), and stays empty for static keys (the node fallback here).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exporter.app import run_once
from exporter.config import Config, parse_config
from exporter.demo.eks_auth import EksAuthEmulator
from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.policies import component_policy, janitor_policy
from exporter.profiles import PROFILES, Component, Operation
from exporter.reasons import Reason
from exporter.results import CycleResult
from tests.backends.rgw import RGWCluster, UserKeys
from tests.identities.support import (
    AUDIENCE_ANNOTATION,
    ROLE_ANNOTATION,
    KubeAccess,
    MintedTokens,
    explain,
    failed,
    kube_target,
    ops,
    scrape,
    series,
    token_requests,
)

pytestmark = pytest.mark.rgw

PROBE_DIR = "objstore-permission-probe"
IRSA_AUDIENCE = "sts.amazonaws.com"
OTHER_CLIENT = "other-client"  # a client ID the provider knows, but no trust policy accepts
# (component, ServiceAccount) as kube-thanos / kube-prometheus name them; the sidecar runs as Prometheus
COMPONENTS = [(Component.COMPACTOR, "thanos-compact"), (Component.STORE, "thanos-store"),
              (Component.RECEIVE, "thanos-receive"), (Component.RULE, "thanos-rule"),
              (Component.SIDECAR, "prometheus-k8s")]


def _static(keys: UserKeys) -> dict[str, Any]:
    return {"source": "static", "access_key_id": {"value": keys.access_key},
            "secret_access_key": {"value": keys.secret_key}}


@dataclass
class KubeOnRGW:
    rgw: RGWCluster
    kube: KubeApiEmulator
    minted: MintedTokens
    kubeconfig: Path
    provider: str
    bucket: str
    janitor: UserKeys
    node: UserKeys
    node_uid: str

    @property
    def issuer_host(self) -> str:
        return self.kube.issuer_url.split("://", 1)[1]

    def irsa_role(self, component: Component, namespace: str, service_account: str) -> str:
        """A role only `system:serviceaccount:<ns>:<sa>` may assume, with a token for sts.amazonaws.com."""
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": [self.provider]},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {
                f"{self.issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{self.issuer_host}:aud": IRSA_AUDIENCE}}}]}
        name = f"{component.value}-{uuid.uuid4().hex[:8]}"
        return self.rgw.create_role(name, trust, component_policy(component, self.bucket))

    def config(self, targets: list[dict[str, Any]]) -> Config:
        return parse_config({
            "global": {"interval": "60s", "timeout": "5s", "jitter": "0s", "probe_dir": PROBE_DIR,
                       "janitor": {"identity": _static(self.janitor)},
                       "kubernetes": {"kubeconfig": str(self.kubeconfig)}},
            "buckets": {"b": {"objstore": {"type": "S3", "config": {
                "bucket": self.bucket, "endpoint": self.rgw.endpoint, "insecure": True, "region": "us-east-1"}}}},
            "targets": targets})


@pytest.fixture(scope="module")
def k8s(rgw: RGWCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeOnRGW]:
    with KubeApiEmulator() as kube:
        minted = MintedTokens(kube)
        kubeconfig = KubeAccess(kube, tmp_path_factory.mktemp("kube-rgw")).kubeconfig("objstore-permission-exporter")
        provider = rgw.create_oidc_provider(kube.issuer_url, [IRSA_AUDIENCE, OTHER_CLIENT], [kube.oidc_thumbprint()])
        tag = uuid.uuid4().hex[:8]
        bucket = f"thanos-{tag}"
        rgw.create_bucket(bucket)
        janitor = rgw.create_user(f"janitor-{tag}")
        jpolicy = janitor_policy(bucket, "", PROBE_DIR)
        # The janitor GETs the canary before writing it; without an unconditional s3:ListBucket a missing
        # canary is a 403 (not 404) on RGW, as on AWS, and the janitor gives up. Granted here so these
        # tests exercise the identities; the janitor's own policy is a separate finding.
        jpolicy["Statement"].append({"Sid": "ListForMissingKeys", "Effect": "Allow", "Action": ["s3:ListBucket"],
                                     "Resource": f"arn:aws:s3:::{bucket}"})
        rgw.put_user_policy(f"janitor-{tag}", "janitor", jpolicy)
        # The node's instance role, as a user whose policy has everything a compactor needs but DeleteObject.
        node_uid = f"node-{tag}"
        node = rgw.create_user(node_uid)
        rgw.put_user_policy(node_uid, "node", component_policy(Component.COMPACTOR, bucket,
                                                               without=frozenset({Operation.DELETE})))
        yield KubeOnRGW(rgw, kube, minted, kubeconfig, provider, bucket, janitor, node, node_uid)


@pytest.fixture
def ns() -> str:
    return f"thanos-{uuid.uuid4().hex[:8]}"


def _by_target(results: list[CycleResult]) -> dict[str, CycleResult]:
    return {r.target: r for r in results}


def _session(role_arn: str) -> str:
    """`arn:aws:iam:::role/x` → `arn:aws:sts:::assumed-role/x` (RGW ARNs carry no account id)."""
    return role_arn.replace(":iam:", ":sts:").replace(":role/", ":assumed-role/")


def test_irsa_every_component_passes_with_real_token_validation(k8s: KubeOnRGW, ns: str) -> None:
    targets, roles = [], {}
    for component, sa in COMPONENTS:
        roles[sa] = k8s.irsa_role(component, ns, sa)
        k8s.kube.add_service_account(ns, sa, annotations={ROLE_ANNOTATION: roles[sa]})
        targets.append({**kube_target(f"{ns}/{sa}", component.value, ns, sa), "expected_principal": roles[sa]})
    config = k8s.config(targets)

    results = _by_target(run_once(config))

    metrics = scrape(config, results.values())
    for component, sa in COMPONENTS:
        result = results[f"{ns}/{sa}"]
        assert result.identity.ok, explain(result)
        assert result.identity.source == "kubernetes_irsa"
        assert result.required_failures() == [], explain(result)
        assert {o for o, r in ops(result).items() if r.required} == PROFILES[component]
        # the probes really ran as the component's least-privilege role session: every excess check is denied
        assert {o: r.reason for o, r in ops(result).items() if not r.required and r.success} == {}, explain(result)
        assert series(metrics, "objstore_permission_identity_info", target=f"{ns}/{sa}") == [
            ({"target": f"{ns}/{sa}", "component": component.value, "source": "kubernetes_irsa",
              "principal": _session(roles[sa])}, 1.0)]
        assert token_requests(k8s.kube, ns, sa) == [201]
    store = ops(results[f"{ns}/thanos-store"])
    assert store[Operation.UPLOAD].reason is Reason.ACCESS_DENIED  # excess check, denied by the store role


def test_incident_compactor_without_role_annotation_runs_as_the_node_role(k8s: KubeOnRGW, ns: str) -> None:
    """The motivating incident, end to end with real token validation: the store is healthy; the compactor's
    ServiceAccount has no role annotation, so its pods run as the node role, which cannot delete."""
    store_role = k8s.irsa_role(Component.STORE, ns, "thanos-store")
    compact_role = k8s.irsa_role(Component.COMPACTOR, ns, "thanos-compact")
    k8s.kube.add_service_account(ns, "thanos-store", annotations={ROLE_ANNOTATION: store_role})
    k8s.kube.add_service_account(ns, "thanos-compact")  # the annotation was never rendered
    node = {"fallback": "node", "node_identity": _static(k8s.node)}
    config = k8s.config([kube_target(f"{ns}/thanos-store", "store", ns, "thanos-store", **node),
                         kube_target(f"{ns}/thanos-compact", "compactor", ns, "thanos-compact", **node)])

    results = _by_target(run_once(config))

    store, compactor = results[f"{ns}/thanos-store"], results[f"{ns}/thanos-compact"]
    assert store.healthy and store.identity.source == "kubernetes_irsa", explain(store)
    assert compactor.identity.reason is Reason.NO_ROLE_ANNOTATION, explain(compactor)
    assert compactor.identity.source == "node_fallback"
    assert compactor.identity.principal == ""  # static keys, and RGW has no GetCallerIdentity to name them
    assert failed(compactor) == {Operation.DELETE: "access_denied"}, explain(compactor)
    assert token_requests(k8s.kube, ns, "thanos-compact") == []
    metrics = scrape(config, results.values())
    name = f"{ns}/thanos-compact"
    assert series(metrics, "objstore_permission_identity_failures_total", target=name) == [
        ({"target": name, "component": "compactor", "reason": "no_role_annotation"}, 1.0)]
    assert series(metrics, "objstore_permission_probe_success", target=name, operation="delete")[0][1] == 0.0

    # the fix: render the annotation; the compactor now assumes its own role and may delete
    k8s.kube.annotate("serviceaccounts", ns, "thanos-compact", {ROLE_ANNOTATION: compact_role})
    fixed = _by_target(run_once(config))[name]
    assert fixed.healthy and fixed.identity.source == "kubernetes_irsa", explain(fixed)


def test_anonymous_fallback_is_denied_everything(k8s: KubeOnRGW, ns: str) -> None:
    k8s.kube.add_service_account(ns, "thanos-compact")
    [result] = run_once(k8s.config([kube_target("c", "compactor", ns, "thanos-compact", fallback="anonymous")]))
    assert result.identity.reason is Reason.NO_ROLE_ANNOTATION, explain(result)
    assert result.identity.source == "anonymous"
    required = {o: r.reason for o, r in ops(result).items() if r.required}
    assert required == dict.fromkeys(PROFILES[Component.COMPACTOR], Reason.ACCESS_DENIED), explain(result)


def test_renamed_service_account_no_longer_matches_the_trust_sub(k8s: KubeOnRGW, ns: str) -> None:
    role = k8s.irsa_role(Component.COMPACTOR, ns, "thanos-compact")
    k8s.kube.add_service_account(ns, "thanos-compact", annotations={ROLE_ANNOTATION: role})
    k8s.kube.add_service_account(ns, "thanos-compactor", annotations={ROLE_ANNOTATION: role})  # renamed copy
    results = _by_target(run_once(k8s.config([
        kube_target("old", "compactor", ns, "thanos-compact"),
        kube_target("renamed", "compactor", ns, "thanos-compactor")])))
    assert results["old"].healthy, explain(results["old"])
    renamed = results["renamed"]
    assert renamed.identity.reason is Reason.ASSUME_ROLE_DENIED, explain(renamed)
    assert renamed.identity.probe_as is None
    assert set(failed(renamed).values()) == {"skipped_dependency"}
    assert token_requests(k8s.kube, ns, "thanos-compactor") == [201]  # the token was minted, STS refused it


def test_token_for_the_wrong_audience_is_refused(k8s: KubeOnRGW, ns: str) -> None:
    """Audience from the annotation (a client ID the provider knows, but the trust's `:aud` refuses) and from
    the config (a client ID the provider does not know): both are real STS refusals."""
    role = k8s.irsa_role(Component.STORE, ns, "thanos-store")
    k8s.kube.add_service_account(ns, "thanos-store", annotations={ROLE_ANNOTATION: role,
                                                                 AUDIENCE_ANNOTATION: OTHER_CLIENT})
    before = len(k8s.minted.tokens)
    results = _by_target(run_once(k8s.config([
        kube_target("annotated", "store", ns, "thanos-store"),
        kube_target("configured", "store", ns, "thanos-store", audience="unknown-client")])))
    for name in ("annotated", "configured"):
        assert results[name].identity.reason is Reason.ASSUME_ROLE_DENIED, explain(results[name])
    assert sorted(c["aud"][0] for c in k8s.minted.claims()[before:]) == [OTHER_CLIENT, "unknown-client"]

    k8s.kube.annotate("serviceaccounts", ns, "thanos-store", {AUDIENCE_ANNOTATION: IRSA_AUDIENCE})  # control
    [ok] = run_once(k8s.config([kube_target("annotated", "store", ns, "thanos-store")]))
    assert ok.healthy, explain(ok)


def test_pod_identity_with_rgw_as_the_backing_sts(k8s: KubeOnRGW, ns: str) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": [k8s.rgw.user_arn("owner")]},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    role = k8s.rgw.create_role(f"pi-compactor-{uuid.uuid4().hex[:8]}", trust,
                               component_policy(Component.COMPACTOR, k8s.bucket))
    k8s.kube.add_service_account(ns, "thanos-compact")
    with EksAuthEmulator({"thanos": k8s.kube.issuer_url}, k8s.rgw.url, tuple(k8s.rgw.owner),  # type: ignore[arg-type]
                         callers={k8s.node.access_key: k8s.node.secret_key}, session_tags=True) as eks:
        eks.add_association("thanos", ns, "thanos-compact", role)
        identity = {"mode": "pod_identity", "cluster_name": "thanos", "eks_auth_endpoint": eks.url,
                    "node_identity": _static(k8s.node)}
        [result] = run_once(k8s.config([kube_target("c", "compactor", ns, "thanos-compact", **identity)]))
        assert [(r.status, r.error) for r in eks.requests] == [(200, "")]
    assert result.identity.ok and result.identity.source == "kubernetes_pod_identity", explain(result)
    assert result.identity.principal == _session(role)  # from the answer's assumedRoleUser
    assert result.healthy, explain(result)  # delete passes: the pod identity role, not the node's


def test_identity_mismatch_when_the_annotation_names_another_role(k8s: KubeOnRGW, ns: str) -> None:
    """The compactor's SA carries a role whose trust admits it, but it is not the role the target expects."""
    expected = k8s.irsa_role(Component.COMPACTOR, ns, "thanos-compact")
    wrong = k8s.irsa_role(Component.STORE, ns, "thanos-compact")  # store permissions, trusting the compactor SA
    k8s.kube.add_service_account(ns, "thanos-compact", annotations={ROLE_ANNOTATION: wrong})
    target = {**kube_target("c", "compactor", ns, "thanos-compact"), "expected_principal": expected}
    [result] = run_once(k8s.config([target]))
    assert result.identity.reason is Reason.IDENTITY_MISMATCH, explain(result)
    assert result.identity.principal == _session(wrong)
    assert {Operation.UPLOAD: "access_denied", Operation.UPLOAD_MULTIPART: "access_denied",
            Operation.DELETE: "access_denied"}.items() <= failed(result).items(), explain(result)
