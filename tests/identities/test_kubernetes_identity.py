"""The `kubernetes` identity source (IRSA) over real HTTP: Kubernetes API emulator + moto with IAM enforced.

The exporter reads the kubeconfig from `global.kubernetes.kubeconfig`, reads the ServiceAccount, mints a token
with the TokenRequest API and calls sts:AssumeRoleWithWebIdentity, exactly as in a cluster. moto does not
validate web identity tokens or trust policies (local-backends.md §A), so `assume_role_denied` and the
end-to-end incident with real token validation live in tests/rgw/test_kubernetes_identity_rgw.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exporter.app import build_probers, run_once
from exporter.demo.kube_apiserver import Rule
from exporter.profiles import PROFILES, Component, Operation
from exporter.reasons import Reason
from exporter.targets import build_targets
from tests.identities.conftest import KubeEnv
from tests.identities.support import (
    AUDIENCE_ANNOTATION,
    EXPIRATION_ANNOTATION,
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

COMPACT = "thanos-compact"


def _assumed(kenv: KubeEnv, role_arn: str) -> str:
    return role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")


def test_irsa_happy_path_every_required_operation_passes(kenv: KubeEnv, minted: MintedTokens) -> None:
    arn = kenv.role(Component.COMPACTOR)
    kenv.service_account(COMPACT, arn)
    target = kube_target(f"{kenv.ns}/{COMPACT}", "compactor", kenv.ns, COMPACT)
    config = kenv.config([{**target, "expected_principal": arn}])
    before = len(minted.tokens)

    [result] = run_once(config)

    assert result.identity.ok, explain(result)
    assert result.identity.source == "kubernetes_irsa"
    assert result.identity.principal == _assumed(kenv, arn)
    assert result.required_failures() == [], explain(result)
    assert {op for op, r in ops(result).items() if r.required} == \
        PROFILES[Component.COMPACTOR] | {Operation.BUCKET_LOCATION}
    # one TokenRequest, for the ServiceAccount, with the IRSA audience and the default lifetime
    assert token_requests(kenv.kube, kenv.ns, COMPACT) == [201]
    [claims] = minted.claims()[before:]
    assert claims["sub"] == f"system:serviceaccount:{kenv.ns}:{COMPACT}"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["exp"] - claims["iat"] == 3600

    metrics = scrape(config, [result])
    name = f"{kenv.ns}/{COMPACT}"
    assert series(metrics, "objstore_permission_identity_info", target=name) == [
        ({"target": name, "component": "compactor", "source": "kubernetes_irsa",
          "principal": _assumed(kenv, arn)}, 1.0)]
    assert series(metrics, "objstore_permission_identity_success", target=name)[0][1] == 1.0
    [(labels, _)] = series(metrics, "objstore_permission_target_info", target=name)
    assert (labels["namespace"], labels["service_account"]) == (kenv.ns, COMPACT)


def test_irsa_annotations_and_config_choose_audience_and_token_lifetime(kenv: KubeEnv, minted: MintedTokens) -> None:
    arn = kenv.role(Component.STORE)
    kenv.service_account("thanos-store", arn, **{AUDIENCE_ANNOTATION: "sts.example.internal",
                                                  EXPIRATION_ANNOTATION: "7200"})
    target = kube_target("store", "store", kenv.ns, "thanos-store")
    before = len(minted.tokens)
    [annotated] = run_once(kenv.config([target]))
    [configured] = run_once(kenv.config([{**target, "identity": {**target["identity"], "audience": "custom-aud"}}]))
    assert annotated.identity.ok and configured.identity.ok, explain(annotated) + explain(configured)
    first, second = minted.claims()[before:]
    assert first["aud"] == ["sts.example.internal"]  # eks.amazonaws.com/audience
    assert first["exp"] - first["iat"] == 7200  # eks.amazonaws.com/token-expiration
    assert second["aud"] == ["custom-aud"]  # identity.audience overrides the annotation


def test_service_account_not_found(kenv: KubeEnv) -> None:
    [result] = run_once(kenv.config([kube_target("ghost", "store", kenv.ns, "thanos-store")]))
    assert not result.identity.ok
    assert result.identity.reason is Reason.SERVICE_ACCOUNT_NOT_FOUND, explain(result)
    assert result.identity.probe_as is None
    assert set(failed(result).values()) == {"skipped_dependency"}
    assert [r.status for r in kenv.kube.requests if r.path.startswith(f"/api/v1/namespaces/{kenv.ns}/")] == [404]
    metrics = scrape(kenv.config([kube_target("ghost", "store", kenv.ns, "thanos-store")]), [result])
    assert series(metrics, "objstore_permission_identity_failures_total", target="ghost") == [
        ({"target": "ghost", "component": "store", "reason": "service_account_not_found"}, 1.0)]
    assert series(metrics, "objstore_permission_identity_success", target="ghost")[0][1] == 0.0


def test_token_request_denied_when_exporter_rbac_lacks_create_token(kenv: KubeEnv, access: KubeAccess) -> None:
    kenv.service_account(COMPACT, kenv.role(Component.COMPACTOR))
    read_only = access.kubeconfig("exporter-read-only", [Rule(verbs=("get",), resources=("serviceaccounts",))])
    [result] = run_once(kenv.config([kube_target("c", "compactor", kenv.ns, COMPACT)], kubeconfig=read_only))
    assert result.identity.reason is Reason.TOKEN_REQUEST_DENIED, explain(result)
    assert "forbidden" in result.identity.message
    assert token_requests(kenv.kube, kenv.ns, COMPACT) == [403]  # the real RBAC denial, not a guess
    assert set(failed(result).values()) == {"skipped_dependency"}


def test_token_request_denied_when_exporter_cannot_read_service_accounts(kenv: KubeEnv, access: KubeAccess) -> None:
    kenv.service_account(COMPACT, kenv.role(Component.COMPACTOR))
    other_ns = access.kubeconfig("exporter-other-ns", [
        Rule(verbs=("get",), resources=("serviceaccounts",), namespace="elsewhere"),
        Rule(verbs=("create",), resources=("serviceaccounts/token",), namespace="elsewhere")])
    [result] = run_once(kenv.config([kube_target("c", "compactor", kenv.ns, COMPACT)], kubeconfig=other_ns))
    assert result.identity.reason is Reason.TOKEN_REQUEST_DENIED, explain(result)


def test_resource_names_restricted_rbac_is_enough(kenv: KubeEnv, access: KubeAccess) -> None:
    """The documented minimal RBAC: get + create token on just the listed ServiceAccounts."""
    arn = kenv.role(Component.COMPACTOR)
    kenv.service_account(COMPACT, arn)
    kenv.service_account("thanos-store", kenv.role(Component.STORE))
    narrow = access.kubeconfig("exporter-narrow", [
        Rule(verbs=("get",), resources=("serviceaccounts",), namespace=kenv.ns, resource_names=(COMPACT,)),
        Rule(verbs=("create",), resources=("serviceaccounts/token",), namespace=kenv.ns,
             resource_names=(COMPACT,))])
    results = run_once(kenv.config([kube_target("c", "compactor", kenv.ns, COMPACT),
                                    kube_target("s", "store", kenv.ns, "thanos-store")], kubeconfig=narrow))
    by_name = {r.target: r for r in results}
    assert by_name["c"].identity.ok, explain(by_name["c"])
    assert by_name["s"].identity.reason is Reason.TOKEN_REQUEST_DENIED, explain(by_name["s"])


def test_no_role_annotation_without_fallback_probes_nothing(kenv: KubeEnv) -> None:
    kenv.service_account(COMPACT)
    [result] = run_once(kenv.config([kube_target("c", "compactor", kenv.ns, COMPACT)]))
    assert result.identity.reason is Reason.NO_ROLE_ANNOTATION, explain(result)
    assert ROLE_ANNOTATION in result.identity.message
    assert set(failed(result).values()) == {"skipped_dependency"}
    assert token_requests(kenv.kube, kenv.ns) == []  # no role, so no token is minted


def test_a_failing_node_fallback_says_why(kenv: KubeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    kenv.service_account(COMPACT)
    node = {"source": "static", "access_key_id": {"env": "OPE_TEST_UNSET_NODE_KEY"},
            "secret_access_key": {"env": "OPE_TEST_UNSET_NODE_SECRET"}}
    target = kube_target("c", "compactor", kenv.ns, COMPACT, fallback="node", node_identity=node)
    monkeypatch.setenv("OPE_TEST_UNSET_NODE_KEY", "x")
    monkeypatch.setenv("OPE_TEST_UNSET_NODE_SECRET", "y")
    config = kenv.config([target])  # valid when loaded; the node's keys disappear afterwards
    monkeypatch.delenv("OPE_TEST_UNSET_NODE_KEY")
    [result] = run_once(config)
    assert result.identity.reason is Reason.NO_ROLE_ANNOTATION, explain(result)
    assert "the node fallback failed (invalid_credentials)" in result.identity.message
    assert "OPE_TEST_UNSET_NODE_KEY is not set" in result.identity.message
    assert set(failed(result).values()) == {"skipped_dependency"}


def test_no_role_annotation_with_node_fallback_shows_the_incident(kenv: KubeEnv) -> None:
    """The motivating incident: the compactor's SA lost its role annotation, its pods run as the node role,
    which cannot s3:DeleteObject. The identity is reported failed, and the matrix shows what the pod gets."""
    arn = kenv.role(Component.COMPACTOR)
    kenv.service_account(COMPACT, arn)
    node_arn, node = kenv.node(without=frozenset({Operation.DELETE}))
    target = kube_target(f"{kenv.ns}/{COMPACT}", "compactor", kenv.ns, COMPACT, fallback="node",
                         node_identity=node)
    config = kenv.config([{**target, "expected_principal": arn}])
    [healthy] = run_once(config)
    assert healthy.healthy, explain(healthy)

    kenv.kube.annotate("serviceaccounts", kenv.ns, COMPACT, {ROLE_ANNOTATION: None})
    [result] = run_once(config)

    assert not result.identity.ok
    assert result.identity.reason is Reason.NO_ROLE_ANNOTATION, explain(result)
    assert result.identity.source == "node_fallback"
    assert result.identity.principal == node_arn
    assert failed(result) == {Operation.DELETE: "access_denied"}, explain(result)
    assert all(ops(result)[op].success for op in PROFILES[Component.COMPACTOR] - {Operation.DELETE})
    metrics = scrape(config, [result])
    name = f"{kenv.ns}/{COMPACT}"
    assert series(metrics, "objstore_permission_identity_info", target=name)[0][0]["source"] == "node_fallback"
    assert series(metrics, "objstore_permission_probe_success", target=name, operation="delete")[0][1] == 0.0
    assert series(metrics, "objstore_permission_probe_failures_total", target=name, operation="delete") == [
        ({"target": name, "component": "compactor", "operation": "delete", "reason": "access_denied"}, 1.0)]


def test_identity_mismatch_when_the_annotation_names_another_role(kenv: KubeEnv) -> None:
    store_role = kenv.role(Component.STORE)
    compactor_role = kenv.role(Component.COMPACTOR)
    kenv.service_account(COMPACT, store_role)  # copy-paste slip: the compactor SA carries the store's role
    target = {**kube_target("c", "compactor", kenv.ns, COMPACT), "expected_principal": compactor_role}
    [result] = run_once(kenv.config([target]))
    assert result.identity.reason is Reason.IDENTITY_MISMATCH, explain(result)
    assert result.identity.principal == _assumed(kenv, store_role)
    assert result.identity.source == "kubernetes_irsa"
    # probed as what the pod really gets: the store role cannot write or delete
    assert {Operation.UPLOAD, Operation.DELETE} <= set(failed(result))


def test_credentials_are_cached_until_near_expiry(kenv: KubeEnv) -> None:
    kenv.service_account(COMPACT, kenv.role(Component.COMPACTOR))
    config = kenv.config([kube_target("c", "compactor", kenv.ns, COMPACT)], credentials_refresh_margin="5m")
    [prober] = build_probers(config, build_targets(config))
    sa_path = f"/api/v1/namespaces/{kenv.ns}/serviceaccounts/{COMPACT}"
    sa_reads = lambda: sum(r.method == "GET" and r.path == sa_path for r in kenv.kube.requests)  # noqa: E731

    first = prober.run_cycle()
    second = prober.run_cycle()
    assert first is not None and second is not None
    assert first.identity.ok and second.identity.ok, explain(first) + explain(second)
    assert first.identity.refreshed and not second.identity.refreshed
    assert token_requests(kenv.kube, kenv.ns, COMPACT) == [201]
    assert sa_reads() == 1
    expiry = first.identity.expiry
    assert expiry is not None
    assert 3500 < (expiry - datetime.now(UTC)).total_seconds() <= 3600

    prober.identity.clock = lambda: expiry - timedelta(minutes=10)  # outside the 5m margin: still cached
    third = prober.run_cycle()
    assert third is not None and not third.identity.refreshed
    assert token_requests(kenv.kube, kenv.ns, COMPACT) == [201]

    prober.identity.clock = lambda: expiry - timedelta(minutes=4)  # inside the margin: refresh, new token
    fourth = prober.run_cycle()
    assert fourth is not None and fourth.identity.refreshed and fourth.identity.ok, explain(fourth)
    assert token_requests(kenv.kube, kenv.ns, COMPACT) == [201, 201]
    assert sa_reads() == 2
    assert fourth.healthy, explain(fourth)
