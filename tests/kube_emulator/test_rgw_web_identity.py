"""End to end on a real STS: Ceph RGW validates the emulator's ServiceAccount tokens (AssumeRoleWithWebIdentity).

This is the check that the issuer is faithful enough to be *trusted*: RGW fetches the discovery document
and the JWKS over HTTP, checks the ``x5c`` cert against the registered SHA-1 thumbprint, verifies the RS256
signature, ``aud`` (client id), ``exp``, and the trust policy's ``<issuer host:port>:sub`` condition.
The token is obtained exactly as the exporter will: SA annotations + TokenRequest through the official client.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.demo.sa_token_issuer import ServiceAccountTokenIssuer
from tests.backends.rgw import RGWCluster, missing_binaries

from .conftest import EXPORTER_TOKEN, seed

pytestmark = pytest.mark.rgw


@pytest.fixture(scope="module")
def rgw() -> Iterator[RGWCluster]:
    """Same skip/fail policy as ``tests/rgw/conftest.py`` (``OPE_REQUIRE_REAL_SERVERS=1`` turns skip into fail)."""
    missing = missing_binaries()
    if missing:
        reason = f"Ceph RGW tier needs the Debian ceph packages (missing: {', '.join(missing)})"
        if os.environ.get("OPE_REQUIRE_REAL_SERVERS", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with RGWCluster() as cluster:
        yield cluster


def _sts_status(call: Any) -> int:
    with pytest.raises(ClientError) as err:
        call()
    status: int = err.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return status


def test_rgw_accepts_emulator_tokens_and_enforces_sub_aud_exp_and_key(rgw: RGWCluster, signing_key: Any) -> None:
    with KubeApiEmulator(signing_key=signing_key) as emu:
        seed(emu)
        host = emu.issuer_url.removeprefix("http://")
        provider = rgw.create_oidc_provider(emu.issuer_url, ["sts.amazonaws.com"], [emu.oidc_thumbprint()])
        bucket = f"kube-{uuid.uuid4().hex[:10]}"
        rgw.create_bucket(bucket)
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": [provider]},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {f"{host}:sub": "system:serviceaccount:thanos:thanos-store"}}}]}
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
        role_arn = rgw.create_role(bucket, trust, policy)
        emu.annotate("serviceaccounts", "thanos", "thanos-store", {"eks.amazonaws.com/role-arn": role_arn})

        with client.ApiClient(emu.client_configuration(EXPORTER_TOKEN)) as api:
            core = client.CoreV1Api(api)
            ann = core.read_namespaced_service_account("thanos-store", "thanos").metadata.annotations

            def token_for(sa: str) -> str:
                req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
                    audiences=[ann["eks.amazonaws.com/audience"]], expiration_seconds=3600))
                token: str = core.create_namespaced_service_account_token(sa, "thanos", req).status.token
                return token

            store_token, compact_token = token_for("thanos-store"), token_for("thanos-compact")

        sts = rgw.client("sts")

        def assume(token: str) -> Any:
            return sts.assume_role_with_web_identity(
                RoleArn=ann["eks.amazonaws.com/role-arn"], RoleSessionName="probe", WebIdentityToken=token)

        creds = assume(store_token)["Credentials"]
        s3 = rgw.client("s3", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                        session_token=creds["SessionToken"])
        s3.put_object(Bucket=bucket, Key="probe", Body=b"ok")
        assert s3.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok"
        assert _sts_status(lambda: s3.delete_object(Bucket=bucket, Key="probe")) == 403  # role policy enforced

        expired = emu.mint_token("thanos", "thanos-store", audiences=["sts.amazonaws.com"], now=time.time() - 7200)
        wrong_aud = emu.mint_token("thanos", "thanos-store", audiences=["pods.eks.amazonaws.com"])
        uid = emu.get("serviceaccounts", "thanos", "thanos-store")["metadata"]["uid"]  # type: ignore[index]
        foreign = ServiceAccountTokenIssuer(emu.issuer_url).mint(
            "thanos", "thanos-store", uid, audiences=["sts.amazonaws.com"])[0]
        for bad in (compact_token, expired, wrong_aud, foreign):  # sub mismatch, exp, aud, signature
            assert _sts_status(lambda bad=bad: assume(bad)) == 403
