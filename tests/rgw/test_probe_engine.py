"""The probe engine against a real S3 server (Ceph RGW): real user, role and bucket policies.

RGW is faithful where moto is not: HEAD of a missing key is 403 without s3:ListBucket, trust policies are
evaluated, STS errors come without a parsable code (classified by HTTP status).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from exporter.app import run_once
from exporter.config import parse_config
from exporter.policies import component_policy, janitor_policy, policy_for_operations
from exporter.profiles import PROFILES, Component, Operation
from exporter.reasons import Reason
from exporter.results import CycleResult
from tests.backends.rgw import RGWCluster, UserKeys

pytestmark = pytest.mark.rgw
PROBE_DIR = "objstore-permission-probe"


def _static(keys: UserKeys) -> dict[str, Any]:
    return {"source": "static", "access_key_id": {"value": keys.access_key},
            "secret_access_key": {"value": keys.secret_key}}


class RGWEnv:
    """A bucket owned by the RGW owner (so no target is its owner), a janitor user, per-target users."""

    def __init__(self, rgw: RGWCluster, prefix: str = "") -> None:
        self.rgw = rgw
        self.tag = uuid.uuid4().hex[:8]
        self.bucket = f"thanos-{self.tag}"
        self.prefix = prefix
        rgw.create_bucket(self.bucket)
        self.janitor = self.user("janitor", janitor_policy(self.bucket, prefix, PROBE_DIR))

    def user(self, name: str, policy: dict[str, Any]) -> UserKeys:
        uid = f"{name}-{self.tag}"
        keys = self.rgw.create_user(uid)
        self.rgw.put_user_policy(uid, "thanos-objstore", policy)
        return keys

    def target(self, component: Component, identity: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": component.value, "component": component.value, "bucket": "b", "identity": identity, **extra}

    def run(self, targets: list[dict[str, Any]], region: str = "", prefix: str | None = None) -> list[CycleResult]:
        config: dict[str, Any] = {"bucket": self.bucket, "endpoint": self.rgw.endpoint, "insecure": True}
        if region:
            config["region"] = region
        objstore: dict[str, Any] = {"type": "S3", "config": config}
        if (prefix if prefix is not None else self.prefix):
            objstore["prefix"] = prefix if prefix is not None else self.prefix
        return run_once(parse_config({
            "global": {"timeout": "5s", "jitter": "0s", "probe_dir": PROBE_DIR,
                       "janitor": {"identity": _static(self.janitor)}},
            "buckets": {"b": {"objstore": objstore}},
            "targets": targets,
        }))

    def objects(self) -> set[str]:
        s3 = self.rgw.client("s3")
        return {o["Key"] for o in s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])}


def _ops(result: CycleResult) -> dict[Operation, Any]:
    return {o.operation: o for o in result.operations}


@pytest.fixture
def env(rgw: RGWCluster) -> RGWEnv:
    return RGWEnv(rgw)


def test_every_component_green_with_least_privilege_user_policies(env: RGWEnv) -> None:
    targets = [env.target(c, _static(env.user(c.value, component_policy(c, env.bucket)))) for c in Component]
    results = env.run(targets)
    for result in results:
        assert result.identity.ok, result.identity.message
        ops = _ops(result)
        assert result.required_failures() == [], [(o.operation, o.detail) for o in result.required_failures()]
        assert {op for op, r in ops.items() if r.required} == PROFILES[Component(result.target)] | {
            Operation.BUCKET_LOCATION}
        assert [op for op, r in ops.items() if r.success and not r.required] == [], "no excess permission"
    assert env.objects() == {f"{PROBE_DIR}/canary"}, "nothing left behind"


def test_compactor_without_delete_is_caught_and_cleaned_up(env: RGWEnv) -> None:
    keys = env.user("compactor", component_policy(Component.COMPACTOR, env.bucket,
                                                  without=frozenset({Operation.DELETE})))
    [result] = env.run([env.target(Component.COMPACTOR, _static(keys))])
    ops = _ops(result)
    assert ops[Operation.DELETE].reason is Reason.ACCESS_DENIED
    assert {o.operation for o in result.required_failures()} == {Operation.DELETE}
    assert result.leaked_objects == 0 and env.objects() == {f"{PROBE_DIR}/canary"}, "janitor removed them"


def test_exists_fails_with_403_for_an_absent_key_without_list_bucket(env: RGWEnv) -> None:
    policy = component_policy(Component.STORE, env.bucket)
    policy["Statement"] = [s for s in policy["Statement"] if "s3:ListBucket" not in s["Action"]]
    [result] = env.run([env.target(Component.STORE, _static(env.user("store", policy)))])
    ops = _ops(result)
    assert ops[Operation.EXISTS].reason is Reason.ACCESS_DENIED
    assert "403" in ops[Operation.EXISTS].detail and "ListBucket" in ops[Operation.EXISTS].detail
    assert ops[Operation.ITER].reason is Reason.ACCESS_DENIED
    for op in (Operation.GET, Operation.GET_RANGE, Operation.ATTRIBUTES):
        assert ops[op].success, ops[op].detail  # HEAD/GET of the canary still work


def test_prefix_scoped_policy_denies_a_put_outside_its_prefix(env: RGWEnv) -> None:
    """The receive role may write only under `tenant-b/`; its Thanos config says `prefix: tenant-a`."""
    keys = env.user("receive", component_policy(Component.RECEIVE, env.bucket, prefix="tenant-b"))
    env.janitor = env.user("janitor-a", janitor_policy(env.bucket, "tenant-a", PROBE_DIR))
    [wrong] = env.run([env.target(Component.RECEIVE, _static(keys))], prefix="tenant-a")
    ops = _ops(wrong)
    assert ops[Operation.UPLOAD].reason is Reason.ACCESS_DENIED
    assert ops[Operation.UPLOAD_MULTIPART].reason is Reason.ACCESS_DENIED
    env.janitor = env.user("janitor-b", janitor_policy(env.bucket, "tenant-b", PROBE_DIR))
    [right] = env.run([env.target(Component.RECEIVE, _static(keys))], prefix="tenant-b")
    assert right.healthy, [(o.operation, o.detail) for o in right.required_failures()]


@pytest.mark.parametrize("region", ["", "us-east-1"])
def test_get_bucket_location_denied(env: RGWEnv, region: str) -> None:
    """Without `region` the lookup is required (minio-go issues it) and fails; with it, it is not probed."""
    policy = component_policy(Component.STORE, env.bucket, bucket_location=False)
    [result] = env.run([env.target(Component.STORE, _static(env.user("store", policy)))], region=region)
    ops = _ops(result)
    if region:
        assert Operation.BUCKET_LOCATION not in ops
        assert result.healthy
    else:
        assert ops[Operation.BUCKET_LOCATION].required
        assert ops[Operation.BUCKET_LOCATION].reason is Reason.ACCESS_DENIED
        assert [o.operation for o in result.required_failures()] == [Operation.BUCKET_LOCATION]


def _role(env: RGWEnv, name: str, trusted_uid: str, policy: dict[str, Any]) -> str:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"],
                                                     "Principal": {"AWS": [env.rgw.user_arn(trusted_uid)]}}]}
    return env.rgw.create_role(f"{name}-{env.tag}", trust, role_policy=policy)


def test_assume_role_into_a_role_and_trust_policy_exclusion(env: RGWEnv) -> None:
    exporter = env.user("exporter", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": ["*"]}]})
    base = _static(exporter)
    compact_arn = _role(env, "compactor", f"exporter-{env.tag}", policy_for_operations(
        env.bucket, "", frozenset(PROFILES[Component.COMPACTOR] - {Operation.DELETE}) | {Operation.BUCKET_LOCATION}))
    excluded_arn = _role(env, "store", f"somebody-else-{env.tag}", component_policy(Component.STORE, env.bucket))
    results = {r.target: r for r in env.run([
        env.target(Component.COMPACTOR, {"source": "assume_role", "role_arn": compact_arn, "base": base},
                   expected_principal=compact_arn),
        env.target(Component.STORE, {"source": "assume_role", "role_arn": excluded_arn, "base": base}),
    ])}
    compactor, store = results["compactor"], results["store"]
    assert compactor.identity.ok, compactor.identity.message
    assert compactor.identity.principal.endswith(f"assumed-role/compactor-{env.tag}")
    assert [o.operation for o in compactor.required_failures()] == [Operation.DELETE]
    assert not store.identity.ok and store.identity.reason is Reason.ASSUME_ROLE_DENIED
    assert {o.reason for o in store.operations} == {Reason.SKIPPED_DEPENDENCY}


def test_invalid_keys_on_rgw(env: RGWEnv) -> None:
    bogus = UserKeys("NOSUCHKEY0000000000A", "wrong")
    [result] = env.run([env.target(Component.STORE, _static(bogus))])
    # RGW answers AccessDenied where AWS says InvalidAccessKeyId: classified as the server words it
    assert {o.reason for o in result.operations if o.required} <= {Reason.ACCESS_DENIED, Reason.INVALID_CREDENTIALS}
    assert not result.healthy


def test_prefix_conditioned_list_bucket_breaks_exists(env: RGWEnv) -> None:
    """A common 'tighter' policy: ListBucket only for `s3:prefix` tenant-a/*. HEAD of a missing key has no
    prefix, so it answers 403 and Thanos's Exists fails: the exporter reports it on `exists`."""
    policy = component_policy(Component.RECEIVE, env.bucket, prefix="tenant-a")
    for stmt in policy["Statement"]:
        if stmt["Action"] == ["s3:ListBucket"]:
            stmt["Condition"] = {"StringLike": {"s3:prefix": ["tenant-a/", "tenant-a/*"]}}
    env.janitor = env.user("janitor-a", janitor_policy(env.bucket, "tenant-a", PROBE_DIR))
    [result] = env.run([env.target(Component.RECEIVE, _static(env.user("receive", policy)))], prefix="tenant-a")
    assert [o.operation for o in result.required_failures()] == [Operation.EXISTS]
    assert _ops(result)[Operation.EXISTS].reason is Reason.ACCESS_DENIED


def test_shipped_iam_examples_are_exactly_enough(rgw: RGWCluster) -> None:
    """deploy/iam/*.json, as committed (bucket `thanos`, prefix `cluster-a`), fed to RGW as user policies:
    every component green, no excess permission, and the janitor keeps the canary and cleans up."""
    import json
    from pathlib import Path

    iam = Path(__file__).parent.parent.parent / "deploy" / "iam"
    env = RGWEnv.__new__(RGWEnv)
    env.rgw, env.tag, env.bucket, env.prefix = rgw, uuid.uuid4().hex[:8], "thanos", "cluster-a"
    rgw.create_bucket("thanos")  # the name the examples are scoped to (one test in the session uses it)
    env.janitor = env.user("janitor", json.loads((iam / "janitor.json").read_text()))
    names = {Component.COMPACTOR: "compactor", Component.STORE: "store", Component.SIDECAR: "sidecar",
             Component.RECEIVE: "receive", Component.RULE: "rule", Component.BUCKET_WEB: "bucket-web"}
    targets = [env.target(c, _static(env.user(f, json.loads((iam / f"{f}.json").read_text()))))
               for c, f in names.items()]
    results = env.run(targets, region="us-east-1")  # the examples leave out s3:GetBucketLocation
    for result in results:
        assert result.healthy, (result.target, [(o.operation, o.detail) for o in result.required_failures()])
        assert [o.operation for o in result.operations if o.success and not o.required] == [], result.target
    assert {k for k in env.objects() if k.startswith("cluster-a/")} == {f"cluster-a/{PROBE_DIR}/canary"}
