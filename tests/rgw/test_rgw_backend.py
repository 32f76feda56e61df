"""The RGW tier really enforces what the exporter's tests rely on: every check is a real HTTP call (boto3).

Each test uses its own users, roles and buckets (unique names), so they share one session cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.backends.oidc import FakeOIDCIssuer, SigningKey
from tests.backends.rgw import RGWCluster, UserKeys

pytestmark = pytest.mark.rgw

SA_SUB = "system:serviceaccount:thanos:store"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _stmt(effect: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": actions, "Resource": resources, **extra}


def _bucket_res(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def _error(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


def _status(err: ClientError) -> int:
    return int(err.response["ResponseMetadata"]["HTTPStatusCode"])


def _assert_access_denied(call: Callable[[], object]) -> None:
    err = _error(call)
    assert _status(err) == 403, err.response
    assert err.response["Error"]["Code"] == "AccessDenied", err.response


def _s3(rgw: RGWCluster, keys: UserKeys) -> Any:
    return rgw.client("s3", access_key=keys.access_key, secret_key=keys.secret_key)


def _session_s3(rgw: RGWCluster, creds: dict[str, Any]) -> Any:
    return rgw.client("s3", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                      session_token=creds["SessionToken"])


def _exists(rgw: RGWCluster, bucket: str, key: str, s3: Any = None) -> bool:
    """Listed (by the owner user unless ``s3`` is given)? HEAD would not do: the bucket owner cannot
    HEAD objects other users uploaded (object ACLs), and HEAD needs s3:ListBucket to tell 404 from 403."""
    s3 = s3 or rgw.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    return any(o["Key"] == key for o in listed)


def test_cluster_answers_and_owner_can_administer(rgw: RGWCluster) -> None:
    assert rgw.bootstrap_seconds is not None  # printed by the fixture (run with -s to see it)
    host, _, port = rgw.endpoint.partition(":")
    assert host == "127.0.0.1"
    assert int(port) == rgw.port  # picked at runtime
    assert rgw.url == f"http://{rgw.endpoint}"
    assert requests.get(rgw.url + "/", timeout=5).status_code == 200  # anonymous ListBuckets

    bucket = _name("admin")
    rgw.create_bucket(bucket)
    assert bucket in [b["Name"] for b in rgw.client("s3").list_buckets()["Buckets"]]
    # Unknown keys and wrong secrets are rejected. AWS says InvalidAccessKeyId / SignatureDoesNotMatch;
    # RGW with rgw_s3_auth_use_sts=true says AccessDenied for both (the STS engine has the last word).
    bogus = rgw.client("s3", access_key="NOSUCHKEY0000000000", secret_key="x" * 40)
    err = _error(lambda: bogus.list_objects_v2(Bucket=bucket))
    assert (_status(err), err.response["Error"]["Code"]) == (403, "AccessDenied")
    wrong_secret = rgw.client("s3", access_key=rgw.owner.access_key, secret_key="x" * 40)
    err = _error(lambda: wrong_secret.list_objects_v2(Bucket=bucket))
    assert (_status(err), err.response["Error"]["Code"]) == (403, "AccessDenied")


def test_bucket_policy_without_delete_denies_delete_only(rgw: RGWCluster) -> None:
    bucket = _name("bp")
    store_uid, other_uid = _name("store"), _name("other")
    store, other = rgw.create_user(store_uid), rgw.create_user(other_uid)
    rgw.create_bucket(bucket, policy=_policy(_stmt(
        "Allow", ["s3:ListBucket", "s3:GetObject", "s3:PutObject"], _bucket_res(bucket),
        Principal={"AWS": [rgw.user_arn(store_uid)]},
    )))
    s3 = _s3(rgw, store)

    s3.put_object(Bucket=bucket, Key="probe/a", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="probe/a")["Body"].read() == b"hello"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["probe/a"]
    _assert_access_denied(lambda: s3.delete_object(Bucket=bucket, Key="probe/a"))
    assert _exists(rgw, bucket, "probe/a")
    # Someone the bucket policy does not name gets nothing.
    _assert_access_denied(lambda: _s3(rgw, other).put_object(Bucket=bucket, Key="probe/b", Body=b"x"))


def test_user_policy_without_delete_denies_delete_only(rgw: RGWCluster) -> None:
    bucket = _name("up")
    uid = _name("store")
    keys = rgw.create_user(uid)
    rgw.create_bucket(bucket)  # owned by the owner user, no bucket policy
    rgw.put_user_policy(uid, "thanos-store", _policy(
        _stmt("Allow", ["s3:ListBucket", "s3:GetObject", "s3:PutObject"], _bucket_res(bucket))))
    s3 = _s3(rgw, keys)

    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    _assert_access_denied(lambda: s3.delete_object(Bucket=bucket, Key="k"))
    assert _exists(rgw, bucket, "k")


def test_quirk_bucket_owner_needs_explicit_deny(rgw: RGWCluster) -> None:
    """RGW falls back to ACLs when no policy decides, and the bucket owner's ACL allows everything:
    a policy that merely *lacks* s3:DeleteObject does not stop the owner. Tests that expect a denial
    must use a bucket owned by someone else (as the tests above do) or an explicit Deny."""
    uid = _name("owns")
    keys = rgw.create_user(uid)
    s3 = _s3(rgw, keys)
    bucket = _name("own")
    s3.create_bucket(Bucket=bucket)
    rgw.put_user_policy(uid, "no-delete", _policy(
        _stmt("Allow", ["s3:ListBucket", "s3:GetObject", "s3:PutObject"], _bucket_res(bucket))))
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="a")  # allowed by the owner ACL
    assert not _exists(rgw, bucket, "a", s3)

    rgw.put_user_policy(uid, "deny-delete", _policy(
        _stmt("Deny", ["s3:DeleteObject"], [f"arn:aws:s3:::{bucket}/*"])))
    s3.put_object(Bucket=bucket, Key="b", Body=b"x")
    _assert_access_denied(lambda: s3.delete_object(Bucket=bucket, Key="b"))


def test_head_missing_key_is_403_without_listbucket_and_404_with_it(rgw: RGWCluster) -> None:
    bucket = _name("head")
    rgw.create_bucket(bucket)
    rgw.client("s3").put_object(Bucket=bucket, Key="present", Body=b"x")
    get_only_uid, get_list_uid = _name("getonly"), _name("getlist")
    get_only, get_list = rgw.create_user(get_only_uid), rgw.create_user(get_list_uid)
    rgw.put_user_policy(get_only_uid, "p", _policy(_stmt("Allow", ["s3:GetObject"], _bucket_res(bucket))))
    rgw.put_user_policy(get_list_uid, "p", _policy(
        _stmt("Allow", ["s3:GetObject", "s3:ListBucket"], _bucket_res(bucket))))

    for keys in (get_only, get_list):
        assert _s3(rgw, keys).head_object(Bucket=bucket, Key="present")["ContentLength"] == 1

    err = _error(lambda: _s3(rgw, get_only).head_object(Bucket=bucket, Key="absent"))
    assert _status(err) == 403, err.response
    err = _error(lambda: _s3(rgw, get_only).get_object(Bucket=bucket, Key="absent"))
    assert (_status(err), err.response["Error"]["Code"]) == (403, "AccessDenied")

    err = _error(lambda: _s3(rgw, get_list).head_object(Bucket=bucket, Key="absent"))
    assert _status(err) == 404, err.response
    err = _error(lambda: _s3(rgw, get_list).get_object(Bucket=bucket, Key="absent"))
    assert (_status(err), err.response["Error"]["Code"]) == (404, "NoSuchKey")


def test_prefix_scoped_put_is_denied_outside_the_prefix(rgw: RGWCluster) -> None:
    bucket = _name("prefix")
    rgw.create_bucket(bucket)
    uid = _name("prober")
    keys = rgw.create_user(uid)
    rgw.put_user_policy(uid, "probe-dir", _policy(
        _stmt("Allow", ["s3:PutObject", "s3:GetObject"], [f"arn:aws:s3:::{bucket}/thanos/probe/*"])))
    s3 = _s3(rgw, keys)

    s3.put_object(Bucket=bucket, Key="thanos/probe/x", Body=b"1")
    assert s3.get_object(Bucket=bucket, Key="thanos/probe/x")["Body"].read() == b"1"
    for key in ("thanos/01HBLOCKULID/meta.json", "thanos/probex", "other/probe/x"):
        _assert_access_denied(partial(s3.put_object, Bucket=bucket, Key=key, Body=b"1"))
        assert not _exists(rgw, bucket, key)


def test_get_bucket_location_denied_unless_granted(rgw: RGWCluster) -> None:
    bucket = _name("loc")
    rgw.create_bucket(bucket)
    without_uid, with_uid = _name("noloc"), _name("loc")
    without, with_ = rgw.create_user(without_uid), rgw.create_user(with_uid)
    rw = ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    rgw.put_user_policy(without_uid, "p", _policy(_stmt("Allow", rw, _bucket_res(bucket))))
    rgw.put_user_policy(with_uid, "p", _policy(
        _stmt("Allow", [*rw, "s3:GetBucketLocation"], _bucket_res(bucket))))

    _s3(rgw, without).list_objects_v2(Bucket=bucket)  # the identity does have bucket access...
    _assert_access_denied(lambda: _s3(rgw, without).get_bucket_location(Bucket=bucket))  # ...but not this
    resp = _s3(rgw, with_).get_bucket_location(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    # RGW answers with its zonegroup's api_name, "default" here (AWS us-east-1 gives an empty constraint).
    assert resp["LocationConstraint"] == "default"


def test_assume_role_trust_policy_and_role_policy_are_enforced(rgw: RGWCluster) -> None:
    bucket = _name("role")
    rgw.create_bucket(bucket)
    alice_uid, bob_uid = _name("alice"), _name("bob")
    alice, bob = rgw.create_user(alice_uid), rgw.create_user(bob_uid)
    role = _name("compactor")
    role_arn = rgw.create_role(
        role,
        trust_policy=_policy({"Effect": "Allow", "Principal": {"AWS": [rgw.user_arn(alice_uid)]},
                              "Action": ["sts:AssumeRole"]}),
        role_policy=_policy(_stmt("Allow", ["s3:ListBucket", "s3:GetObject", "s3:PutObject"],
                                  _bucket_res(bucket))),
    )
    assert role_arn == f"arn:aws:iam:::role/{role}" == rgw.role_arn(role)  # no account id on RGW

    sts = rgw.client("sts", access_key=alice.access_key, secret_key=alice.secret_key)
    resp = sts.assume_role(RoleArn=role_arn, RoleSessionName="probe", DurationSeconds=900)
    assert resp["AssumedRoleUser"]["Arn"] == f"arn:aws:sts:::assumed-role/{role}/probe"
    s3 = _session_s3(rgw, resp["Credentials"])
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    _assert_access_denied(lambda: s3.delete_object(Bucket=bucket, Key="k"))
    assert _exists(rgw, bucket, "k")
    # The role's permissions are the session's, not alice's: alice herself cannot write here.
    _assert_access_denied(lambda: _s3(rgw, alice).put_object(Bucket=bucket, Key="k2", Body=b"v"))
    # Quirk: RGW makes the *assuming user* the owner of what the session writes (AWS: the bucket
    # account), so that object's ACL lets alice read it with her static keys.
    assert _s3(rgw, alice).get_object_acl(Bucket=bucket, Key="k")["Owner"]["ID"] == alice_uid
    # A corrupted session token is rejected.
    bad = dict(resp["Credentials"], SessionToken=resp["Credentials"]["SessionToken"][:-8] + "AAAAAAAA")
    assert _status(_error(lambda: _session_s3(rgw, bad).get_object(Bucket=bucket, Key="k"))) == 403

    # bob is not in the trust policy. RGW's STS error bodies are S3-style, so botocore may leave
    # Error.Code empty: the HTTP status is the reliable signal.
    sts_bob = rgw.client("sts", access_key=bob.access_key, secret_key=bob.secret_key)
    err = _error(lambda: sts_bob.assume_role(RoleArn=role_arn, RoleSessionName="probe"))
    assert _status(err) == 403, err.response
    assert err.response.get("Error", {}).get("Code") in (None, "", "AccessDenied")


def test_role_path_is_part_of_role_and_session_arns(rgw: RGWCluster) -> None:
    alice_uid = _name("alice")
    alice = rgw.create_user(alice_uid)
    role = _name("pathrole")
    trust = _policy({"Effect": "Allow", "Principal": {"AWS": [rgw.user_arn(alice_uid)]},
                     "Action": ["sts:AssumeRole"]})
    role_arn = rgw.create_role(role, trust, path="/thanos/")
    assert role_arn == f"arn:aws:iam:::role/thanos/{role}" == rgw.role_arn(role, "/thanos/")
    sts = rgw.client("sts", access_key=alice.access_key, secret_key=alice.secret_key)
    resp = sts.assume_role(RoleArn=role_arn, RoleSessionName="probe")
    assert resp["AssumedRoleUser"]["Arn"] == f"arn:aws:sts:::assumed-role/thanos/{role}/probe"


def test_assume_role_with_web_identity_checks_token_and_trust(rgw: RGWCluster) -> None:
    bucket = _name("wi")
    rgw.create_bucket(bucket)
    with FakeOIDCIssuer() as idp:
        provider_arn = rgw.create_oidc_provider(idp.issuer, ["sts.amazonaws.com"], [idp.thumbprint])
        assert provider_arn == f"arn:aws:iam:::oidc-provider/{idp.host}"
        role_arn = rgw.create_role(
            _name("store-wi"),
            trust_policy=_policy({
                "Effect": "Allow",
                "Principal": {"Federated": [provider_arn]},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Condition": {"StringEquals": {f"{idp.host}:sub": SA_SUB}},
            }),
            role_policy=_policy(_stmt("Allow", ["s3:ListBucket", "s3:GetObject", "s3:PutObject"],
                                      _bucket_res(bucket))),
        )
        sts = rgw.client("sts")  # AssumeRoleWithWebIdentity is sent unsigned by botocore anyway

        def assume(token: str) -> dict[str, Any]:
            return dict(sts.assume_role_with_web_identity(
                RoleArn=role_arn, RoleSessionName="store", WebIdentityToken=token))

        resp = assume(idp.mint(SA_SUB))
        assert resp["SubjectFromWebIdentityToken"] == SA_SUB
        assert "/.well-known/openid-configuration" in idp.requests  # RGW really fetched discovery + JWKS
        s3 = _session_s3(rgw, resp["Credentials"])
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        _assert_access_denied(lambda: s3.delete_object(Bucket=bucket, Key="k"))

        for bad_token in (
            idp.mint("system:serviceaccount:thanos:other"),  # sub not allowed by the trust policy
            idp.mint(SA_SUB, key=SigningKey()),  # signed by a key the issuer does not publish
            idp.mint(SA_SUB, expires_in=-120),  # expired
            idp.mint(SA_SUB, audience="someone-else"),  # client id not registered
            "not-a-jwt",
        ):
            err = _error(partial(assume, bad_token))
            assert _status(err) == 403, err.response


def test_quirk_sts_get_caller_identity_is_not_implemented(rgw: RGWCluster) -> None:
    """RGW 16 has no GetCallerIdentity: an identity check must not depend on it against this tier."""
    err = _error(lambda: rgw.client("sts").get_caller_identity())
    assert _status(err) == 405, err.response
