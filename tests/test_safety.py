"""Safety: no request outside the probe dir, deletes only inside it, cleanup, and leaks counted."""

from __future__ import annotations

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.app import run_once
from exporter.demo.emulator import Emulator
from exporter.objstore import S3Config
from exporter.policies import policy_for_operations
from exporter.probes.bucket import ProbeBucket
from exporter.probes.keyspace import Keyspace, UnsafeKeyError
from exporter.profiles import Component, Operation
from tests.support.env import PROBE_DIR, ProbeEnv
from tests.support.proxy import RecordingProxy

BLOCK = "01HZX5Q2W3E4R5T6Y7V8J9K0PA"


def _seed_thanos_blocks(env: ProbeEnv) -> dict[str, str]:
    s3 = env.emu.client("s3")
    for key in (f"{BLOCK}/meta.json", f"{BLOCK}/index", f"{BLOCK}/chunks/000001", "debug/metas/x.json"):
        s3.put_object(Bucket=env.bucket, Key=key, Body=b"thanos data")
    return env.objects()


def test_every_request_stays_inside_the_probe_dir(env: ProbeEnv) -> None:
    before = _seed_thanos_blocks(env)
    all_ops = frozenset(Operation)
    targets = [
        env.component_target(Component.COMPACTOR),
        env.component_target(Component.STORE, policy=policy_for_operations(env.bucket, "", all_ops)),
        env.component_target(Component.SIDECAR, policy={"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}),
    ]
    with RecordingProxy(env.emu.url) as proxy:
        results = run_once(env.config(targets, endpoint=proxy.endpoint))
        seen = proxy.requests()
    assert len(results) == 3
    s3_requests = [r for r in seen if r.path.startswith(f"/{env.bucket}")]
    assert s3_requests, "the probes went through the proxy"
    base = f"/{env.bucket}/{PROBE_DIR}/"
    for req in s3_requests:
        if req.path == f"/{env.bucket}" or req.path == f"/{env.bucket}/":
            # bucket-level: listing (only ever of the probe dir) or GetBucketLocation
            if "location" in req.query:
                continue
            assert req.query.get("prefix", [""])[0].startswith(f"{PROBE_DIR}/"), req
        else:
            assert req.path.startswith(base), req
    deletes = [r for r in s3_requests if r.method == "DELETE"]
    assert deletes and all(r.path.startswith(base) for r in deletes)
    after = env.objects()
    assert {k: v for k, v in after.items() if not k.startswith(f"{PROBE_DIR}/")} == before


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from(["", "tenant", "a/b"]), key=st.text(min_size=0, max_size=60))
def test_choke_point_refuses_any_key_outside_the_probe_dir(prefix: str, key: str) -> None:
    keyspace = Keyspace(prefix, PROBE_DIR)
    inside = key.startswith(keyspace.base) and len(key) > len(keyspace.base) and not any(
        part in ("", ".", "..") for part in key[len(keyspace.base):].split("/")) and "\\" not in key \
        and "\x00" not in key
    if inside:
        assert keyspace.require_inside(key) == key
    else:
        with pytest.raises(UnsafeKeyError):
            keyspace.require_inside(key)


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from([f"{BLOCK}/meta.json", "objstore-permission-probe", "objstore-permission-probe/",
                            "objstore-permission-probe/../01HZX/meta.json", "other/objstore-permission-probe/x",
                            "objstore-permission-probe//x", "objstore-permission-probex/y"]))
def test_probe_bucket_sends_nothing_for_an_unsafe_key(emulator: Emulator, key: str) -> None:
    with RecordingProxy(emulator.url) as proxy:
        client = boto3.session.Session().client(
            "s3", endpoint_url=f"http://{proxy.endpoint}", region_name="us-east-1",
            aws_access_key_id=emulator.admin_access_key_id, aws_secret_access_key=emulator.admin_secret_access_key)
        bucket = ProbeBucket(client, S3Config(bucket="any", endpoint=proxy.endpoint), Keyspace("", PROBE_DIR))
        for call in (lambda: bucket.delete(key), lambda: bucket.put(key, b"x"), lambda: bucket.head(key),
                     lambda: bucket.get(key), lambda: bucket.upload_multipart(key, b"x")):
            with pytest.raises(UnsafeKeyError):
                call()
        assert proxy.requests() == []


def test_no_leftovers_when_delete_is_allowed(env: ProbeEnv) -> None:
    cfg = env.config([env.component_target(Component.COMPACTOR,
                                           policy=policy_for_operations(env.bucket, "", frozenset(Operation)))])
    for _ in range(2):
        [result] = run_once(cfg)
        assert result.healthy and result.leaked_objects == 0
    assert set(env.objects()) == {f"{PROBE_DIR}/canary"}


def test_janitor_removes_what_a_target_cannot_delete(env: ProbeEnv) -> None:
    [result] = run_once(env.config([env.component_target(Component.RECEIVE)]))
    ops = {o.operation: o for o in result.operations}
    assert ops[Operation.UPLOAD].success and not ops[Operation.DELETE].success
    assert result.leaked_objects == 0
    assert set(env.objects()) == {f"{PROBE_DIR}/canary"}


def test_leaks_are_counted_then_retried(emulator: Emulator) -> None:
    env = ProbeEnv(emulator, janitor_can_delete=False)
    from exporter.app import build_probers
    from exporter.policies import janitor_policy
    from exporter.targets import build_targets

    cfg = env.config([env.component_target(Component.RECEIVE)])
    [prober] = build_probers(cfg, build_targets(cfg))
    first = prober.run_cycle()
    assert first is not None and first.leaked_objects == 2  # the upload and the multipart object
    assert len([k for k in env.objects() if "/targets/" in k]) == 2
    env.set_janitor_policy(janitor_policy(env.bucket, "", PROBE_DIR))
    second = prober.run_cycle()
    assert second is not None and second.leaked_objects == 0
    assert set(env.objects()) == {f"{PROBE_DIR}/canary"}


def test_janitor_aborts_stale_incomplete_uploads_in_the_probe_dir_only(emulator: Emulator) -> None:
    from exporter.app import build_probers
    from exporter.targets import build_targets

    env = ProbeEnv(emulator)
    s3 = env.emu.client("s3")
    inside = s3.create_multipart_upload(Bucket=env.bucket, Key=f"{PROBE_DIR}/targets/x/1/multipart")["UploadId"]
    outside = s3.create_multipart_upload(Bucket=env.bucket, Key=f"{BLOCK}/chunks/000001")["UploadId"]
    cfg = env.config([env.component_target(Component.STORE)],
                     janitor={"identity": env.config_dict([])["global"]["janitor"]["identity"], "leftover_age": "0s"})
    [prober] = build_probers(cfg, build_targets(cfg))
    assert prober.run_cycle() is not None
    left = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=env.bucket).get("Uploads", [])}
    assert inside not in left, "the stale probe upload was aborted"
    assert outside in left, "an upload outside the probe dir is never touched"
