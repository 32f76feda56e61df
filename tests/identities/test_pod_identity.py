"""EKS Pod Identity over real HTTP: kube API emulator → EKS Auth emulator → moto STS (IAM enforced).

The exporter mints a token for `pods.eks.amazonaws.com` with the TokenRequest API and calls
eks-auth:AssumeRoleForPodIdentity signed with the node's credentials, as the Pod Identity Agent does. The EKS
Auth emulator validates the token against the kube emulator's JWKS (over HTTP), looks up the association and
assumes the role on moto. The last tests check the emulator's own error behaviour through botocore.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from exporter.clients import service_client
from exporter.credentials import Credentials
from exporter.demo.eks_auth import EksAuthEmulator
from exporter.demo.emulator import Emulator
from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.demo.sa_token_issuer import ServiceAccountTokenIssuer
from exporter.policies import component_policy
from exporter.profiles import PROFILES, Component, Operation
from exporter.reasons import Reason
from tests.identities.conftest import KubeEnv
from tests.identities.support import MintedTokens, explain, failed, kube_target, ops, token_requests
from tests.support.env import static

CLUSTER = "thanos-prod"
SA = "thanos-compact"


@pytest.fixture(scope="module")
def eks(emulator: Emulator, kube: KubeApiEmulator) -> Iterator[EksAuthEmulator]:
    with EksAuthEmulator({CLUSTER: kube.issuer_url}, emulator.url,
                         (emulator.admin_access_key_id, emulator.admin_secret_access_key), callers={}) as e:
        yield e


class PodIdentity:
    def __init__(self, kenv: KubeEnv, eks: EksAuthEmulator) -> None:
        self.kenv, self.eks = kenv, eks
        emu = kenv.env.emu
        self.node_name = f"node-{kenv.env.tag}"
        policy = component_policy(Component.COMPACTOR, kenv.env.bucket, without=frozenset({Operation.DELETE}))
        self.node_keys = emu.create_user(self.node_name, policy)
        eks.callers[self.node_keys[0]] = self.node_keys[1]  # type: ignore[index]

    def role(self, component: Component) -> str:
        emu = self.kenv.env.emu
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Principal": {"Service": "pods.eks.amazonaws.com",
                          "AWS": f"arn:aws:iam::{emu.account_id}:user/emulator-admin"}}]}
        return emu.create_role(f"pi-{component.value}-{self.kenv.env.tag}", trust, "thanos-objstore",
                               component_policy(component, self.kenv.env.bucket))

    def target(self, component: str = "compactor", sa: str = SA, **identity: Any) -> dict[str, Any]:
        ident = {"mode": "pod_identity", "cluster_name": CLUSTER, "eks_auth_endpoint": self.eks.url,
                 "node_identity": static(*self.node_keys), **identity}
        return kube_target(f"{self.kenv.ns}/{sa}", component, self.kenv.ns, sa, **ident)


@pytest.fixture
def pi(kenv: KubeEnv, eks: EksAuthEmulator) -> PodIdentity:
    return PodIdentity(kenv, eks)


def _eks_calls(eks: EksAuthEmulator, key: str) -> list[tuple[int, str]]:
    return [(r.status, r.error) for r in eks.requests if r.access_key_id == key]


def test_pod_identity_happy_path(pi: PodIdentity, minted: MintedTokens) -> None:
    arn = pi.role(Component.COMPACTOR)
    pi.kenv.service_account(SA)  # Pod Identity needs no annotation
    pi.eks.add_association(CLUSTER, pi.kenv.ns, SA, arn)
    before = len(minted.tokens)

    [result] = run(pi, [{**pi.target(), "expected_principal": arn}])

    assert result.identity.ok, explain(result)
    assert result.identity.source == "kubernetes_pod_identity"
    assert result.identity.principal == arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
    assert result.required_failures() == [], explain(result)
    assert all(ops(result)[op].success for op in PROFILES[Component.COMPACTOR])
    assert _eks_calls(pi.eks, pi.node_keys[0]) == [(200, "")]  # signed with the node's keys, verified
    assert token_requests(pi.kenv.kube, pi.kenv.ns, SA) == [201]
    [claims] = minted.claims()[before:]
    assert claims["aud"] == ["pods.eks.amazonaws.com"]
    assert result.identity.expiry is not None and result.identity.expiry.timestamp() > time.time() + 3000


def test_no_association_is_no_role_annotation_and_falls_back_to_the_node(pi: PodIdentity) -> None:
    pi.kenv.service_account(SA)
    [result] = run(pi, [pi.target(fallback="node")])
    assert result.identity.reason is Reason.NO_ROLE_ANNOTATION, explain(result)
    assert "Pod Identity association" in result.identity.message
    assert result.identity.source == "node_fallback"
    assert result.identity.principal == f"arn:aws:iam::{pi.kenv.env.emu.account_id}:user/{pi.node_name}"
    assert failed(result) == {Operation.DELETE: "access_denied"}, explain(result)
    assert _eks_calls(pi.eks, pi.node_keys[0]) == [(404, "ResourceNotFoundException")]


def test_wrong_audience_is_assume_role_denied(pi: PodIdentity) -> None:
    pi.kenv.service_account(SA)
    pi.eks.add_association(CLUSTER, pi.kenv.ns, SA, pi.role(Component.COMPACTOR))
    [result] = run(pi, [pi.target(audience="sts.amazonaws.com")])
    assert result.identity.reason is Reason.ASSUME_ROLE_DENIED, explain(result)
    assert result.identity.probe_as is None
    assert _eks_calls(pi.eks, pi.node_keys[0]) == [(400, "InvalidTokenException")]


def test_node_not_allowed_to_call_eks_auth_is_assume_role_denied(pi: PodIdentity) -> None:
    pi.kenv.service_account(SA)
    pi.eks.add_association(CLUSTER, pi.kenv.ns, SA, pi.role(Component.COMPACTOR))
    pi.eks.authorized = {"SOMEONE-ELSE"}
    try:
        [result] = run(pi, [pi.target()])
    finally:
        pi.eks.authorized = None
    assert result.identity.reason is Reason.ASSUME_ROLE_DENIED, explain(result)
    assert _eks_calls(pi.eks, pi.node_keys[0]) == [(400, "AccessDeniedException")]


def test_invalid_node_credentials_are_invalid_credentials(pi: PodIdentity) -> None:
    pi.kenv.service_account(SA)
    pi.eks.add_association(CLUSTER, pi.kenv.ns, SA, pi.role(Component.COMPACTOR))
    wrong_secret = static(pi.node_keys[0], "not-the-secret")
    [result] = run(pi, [pi.target(node_identity=wrong_secret)])
    assert result.identity.reason is Reason.INVALID_CREDENTIALS, explain(result)
    assert _eks_calls(pi.eks, pi.node_keys[0]) == [(403, "InvalidSignatureException")]


def test_role_trust_refusing_eks_is_assume_role_denied(pi: PodIdentity) -> None:
    emu = pi.kenv.env.emu
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"AWS": f"arn:aws:iam::{emu.account_id}:root"}}]}
    arn = emu.create_role(f"pi-untrusting-{pi.kenv.env.tag}", trust, "p", component_policy(
        Component.COMPACTOR, pi.kenv.env.bucket))
    pi.kenv.service_account(SA)
    pi.eks.add_association(CLUSTER, pi.kenv.ns, SA, arn)
    [result] = run(pi, [pi.target()])
    assert result.identity.reason is Reason.ASSUME_ROLE_DENIED, explain(result)
    assert _eks_calls(pi.eks, pi.node_keys[0]) == [(400, "AccessDeniedException")]


def run(pi: PodIdentity, targets: list[dict[str, Any]]) -> list[Any]:
    from exporter.app import run_once

    return run_once(pi.kenv.config(targets))


# ---- the emulator itself, through botocore's eks-auth client ----------------------------------------------


def _call(eks: EksAuthEmulator, token: str, creds: Credentials | None, cluster: str = CLUSTER) -> Any:
    return service_client("eks-auth", eks.url, "us-east-1", creds, 5).assume_role_for_pod_identity(
        clusterName=cluster, token=token)


def _code(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call()
    return (err.value.response["ResponseMetadata"]["HTTPStatusCode"], err.value.response["Error"]["Code"])


def test_emulator_rejects_what_eks_auth_rejects(pi: PodIdentity, kube: KubeApiEmulator) -> None:
    pi.kenv.service_account(SA)
    arn = pi.role(Component.COMPACTOR)
    pi.eks.add_association(CLUSTER, pi.kenv.ns, SA, arn)
    node = Credentials(*pi.node_keys)
    good = kube.mint_token(pi.kenv.ns, SA, audiences=["pods.eks.amazonaws.com"])
    answer = _call(pi.eks, good, node)
    assert answer["subject"] == {"namespace": pi.kenv.ns, "serviceAccount": SA}
    assert answer["audience"] == "pods.eks.amazonaws.com"
    assert answer["assumedRoleUser"]["arn"].endswith(f":assumed-role/{arn.rsplit('/', 1)[1]}/"
                                                     + answer["assumedRoleUser"]["assumeRoleId"].split(":")[1])
    assert answer["credentials"]["expiration"].timestamp() > time.time()
    assert answer["podIdentityAssociation"]["associationArn"].endswith(
        answer["podIdentityAssociation"]["associationId"])

    expired = kube.mint_token(pi.kenv.ns, SA, audiences=["pods.eks.amazonaws.com"], now=time.time() - 7200)
    uid = kube.get("serviceaccounts", pi.kenv.ns, SA)["metadata"]["uid"]  # type: ignore[index]
    foreign = ServiceAccountTokenIssuer(kube.issuer_url).mint(pi.kenv.ns, SA, uid,
                                                              audiences=["pods.eks.amazonaws.com"])[0]
    wrong_aud = kube.mint_token(pi.kenv.ns, SA, audiences=["sts.amazonaws.com"])
    assert _code(lambda: _call(pi.eks, expired, node)) == (400, "ExpiredTokenException")
    assert _code(lambda: _call(pi.eks, foreign, node)) == (400, "InvalidTokenException")
    assert _code(lambda: _call(pi.eks, wrong_aud, node)) == (400, "InvalidTokenException")
    assert _code(lambda: _call(pi.eks, good, None)) == (403, "MissingAuthenticationTokenException")
    assert _code(lambda: _call(pi.eks, good, Credentials("AKIDUNKNOWN", "x"))) == \
        (403, "UnrecognizedClientException")
    assert _code(lambda: _call(pi.eks, good, node, cluster="other")) == (404, "ResourceNotFoundException")
