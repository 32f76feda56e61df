"""Each operation's allowed/denied detection, on the emulator with IAM enforced, over real HTTP."""

from __future__ import annotations

import pytest

from exporter.app import run_once
from exporter.policies import policy_for_operations
from exporter.profiles import PROFILES, Component, Operation
from exporter.reasons import Reason
from tests.support.env import ProbeEnv

ALL_OPS = frozenset(Operation)


def _by_op(result: object) -> dict[Operation, object]:
    return {op.operation: op for op in result.operations}  # type: ignore[attr-defined]


@pytest.mark.parametrize("component", list(Component))
def test_least_privilege_policy_makes_every_required_operation_pass(env: ProbeEnv, component: Component) -> None:
    [result] = run_once(env.config([env.component_target(component)]))
    assert result.identity.ok, result.identity.message
    assert result.required_failures() == []
    ops = _by_op(result)
    assert {op for op, r in ops.items() if r.required} == PROFILES[component] | {Operation.BUCKET_LOCATION}
    # least privilege: nothing beyond the profile is allowed
    assert [op for op, r in ops.items() if not r.required and r.success] == []


# (IAM action removed, operations that must then fail with access_denied). On moto, HEAD of a missing key
# answers 404 even without s3:ListBucket, so `exists` is covered on the Ceph RGW tier instead.
DENIALS = [
    ("s3:GetObject", {Operation.GET, Operation.GET_RANGE, Operation.EXISTS, Operation.ATTRIBUTES}),
    ("s3:PutObject", {Operation.UPLOAD, Operation.UPLOAD_MULTIPART}),
    ("s3:DeleteObject", {Operation.DELETE}),
    ("s3:ListBucket", {Operation.ITER}),
    ("s3:GetBucketLocation", {Operation.BUCKET_LOCATION}),
]


@pytest.mark.parametrize(("action", "failing"), DENIALS, ids=[a for a, _ in DENIALS])
def test_removing_one_action_fails_exactly_its_operations(env: ProbeEnv, action: str, failing: set[Operation]) -> None:
    policy = policy_for_operations(env.bucket, "", ALL_OPS)
    for stmt in policy["Statement"]:
        stmt["Action"] = [a for a in stmt["Action"] if a != action]
    policy["Statement"] = [s for s in policy["Statement"] if s["Action"]]
    target = env.component_target(Component.TOOLS, policy=policy,
                                  profile={"add": [op.value for op in ALL_OPS]})
    [result] = run_once(env.config([target]))
    ops = _by_op(result)
    assert set(ops) == ALL_OPS
    failed = {op for op, r in ops.items() if not r.success}
    assert failed == failing
    for op in failing:
        assert ops[op].reason is Reason.ACCESS_DENIED, (op, ops[op].detail)


def test_excess_permissions_are_probed_safely_and_reported(env: ProbeEnv) -> None:
    """A store role that may also write and delete: both show up as excess (success, not required)."""
    policy = policy_for_operations(env.bucket, "", ALL_OPS)
    before = env.objects()
    [result] = run_once(env.config([env.component_target(Component.STORE, policy=policy)]))
    ops = _by_op(result)
    excess = {op for op, r in ops.items() if r.success and not r.required}
    assert excess == {Operation.UPLOAD, Operation.UPLOAD_MULTIPART, Operation.DELETE}
    after = env.objects()
    assert set(after) - set(before) == {f"{'objstore-permission-probe'}/canary"}, "excess checks left objects"


def test_prefix_scoped_policy_is_honoured(emulator: object) -> None:
    """With `prefix:` the probe dir lives inside it, so a prefix-scoped role passes."""
    env = ProbeEnv(emulator, prefix="tenant-a")  # type: ignore[arg-type]
    [result] = run_once(env.config([env.component_target(Component.COMPACTOR)]))
    assert result.healthy, [(o.operation, o.detail) for o in result.operations if not o.success]
    assert all(k.startswith("tenant-a/objstore-permission-probe/") for k in env.objects())


def test_region_configured_means_no_bucket_location_probe(env: ProbeEnv) -> None:
    data = env.config_dict([env.component_target(Component.STORE)])
    data["buckets"]["b"]["objstore"]["config"]["region"] = "us-east-1"
    from exporter.config import parse_config

    [result] = run_once(parse_config(data))
    assert Operation.BUCKET_LOCATION not in _by_op(result)
    assert result.healthy
