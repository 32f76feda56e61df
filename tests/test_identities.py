"""Identity sources and the credential cache against the emulator's real STS."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from exporter.app import run_once
from exporter.config import AssumeRoleIdentity, GlobalSettings, StaticIdentity
from exporter.identities.base import IdentitySource, ResolvedIdentity
from exporter.identities.cache import CredentialCache
from exporter.identities.registry import build_source, sts_context
from exporter.objstore import S3Config
from exporter.policies import component_policy
from exporter.profiles import Component
from exporter.reasons import Reason
from tests.support.env import ProbeEnv, static
from tests.support.proxy import RecordingProxy


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _assume_role_calls(proxy: RecordingProxy) -> int:
    return sum(1 for r in proxy.requests() if b"Action=AssumeRole&" in r.body or r.body.endswith(b"Action=AssumeRole"))


def test_credentials_are_cached_and_refreshed_before_expiry(env: ProbeEnv) -> None:
    arn = env.role("store", component_policy(Component.STORE, env.bucket))
    with RecordingProxy(env.emu.url) as proxy:
        s3 = S3Config(bucket=env.bucket, endpoint=proxy.endpoint, insecure=True)
        settings = GlobalSettings(timeout=5)
        cfg = AssumeRoleIdentity.model_validate(env.assume(arn, duration="15m"))
        clock = Clock()
        cache = CredentialCache(build_source(cfg, s3, settings), sts_context(s3, 5), refresh_margin=300, clock=clock)
        first = cache.current()
        assert first.ok and first.probe_as is not None and first.expiry is not None
        assert first.principal.endswith(f":assumed-role/{arn.rsplit('/', 1)[1]}")  # session name stripped
        assert _assume_role_calls(proxy) == 1
        lifetime = (first.expiry - clock.now).total_seconds()
        # well before the refresh margin: served from cache, no STS call
        clock.now += timedelta(seconds=lifetime - 300 - 30)
        assert cache.current().probe_as == first.probe_as
        assert _assume_role_calls(proxy) == 1
        # inside the margin (before expiry): refreshed, and the principal re-checked
        clock.now += timedelta(seconds=60)
        second = cache.current()
        assert second.refreshed and second.probe_as != first.probe_as
        assert _assume_role_calls(proxy) == 2
        calls = [r for r in proxy.requests() if b"GetCallerIdentity" in r.body]
        assert len(calls) == 2, "GetCallerIdentity after each refresh"


class FailingAfterFirst(IdentitySource):
    """Wraps a real source; later refreshes fail like an STS outage."""

    def __init__(self, inner: IdentitySource) -> None:
        self.inner, self.calls = inner, 0

    def resolve(self) -> ResolvedIdentity:
        self.calls += 1
        if self.calls > 1:
            from exporter.identities.base import IdentityError

            raise IdentityError(Reason.CONNECTION_ERROR, "sts unreachable")
        return self.inner.resolve()


def test_failed_refresh_keeps_valid_credentials_and_counts_the_failure(env: ProbeEnv) -> None:
    arn = env.role("store", component_policy(Component.STORE, env.bucket))
    s3 = S3Config(bucket=env.bucket, endpoint=env.emu.endpoint, insecure=True)
    source = FailingAfterFirst(build_source(AssumeRoleIdentity.model_validate(env.assume(arn, duration="15m")), s3,
                                            GlobalSettings()))
    clock = Clock()
    cache = CredentialCache(source, sts_context(s3, 5), refresh_margin=300, clock=clock)
    first = cache.current()
    assert first.expiry is not None
    clock.now = first.expiry - timedelta(seconds=60)
    during = cache.current()
    assert during.ok and during.probe_as == first.probe_as and during.refresh_failure is Reason.CONNECTION_ERROR
    clock.now = first.expiry + timedelta(seconds=1)
    after = cache.current()
    assert not after.ok and after.reason is Reason.CONNECTION_ERROR and after.probe_as is None


def test_expected_principal_mismatch_is_a_finding(env: ProbeEnv) -> None:
    target = env.component_target(Component.STORE, expected_principal=f"arn:aws:iam::{env.emu.account_id}:role/other")
    [result] = run_once(env.config([target]))
    assert not result.identity.ok and result.identity.reason is Reason.IDENTITY_MISMATCH
    assert result.required_failures() == [], "operations still probed with the credentials actually obtained"


def test_assume_role_denied_by_trust_policy(env: ProbeEnv) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": f"arn:aws:iam::{env.emu.account_id}:root"},
                                                     "Condition": {"StringEquals": {"sts:ExternalId": "nope"}}}]}
    arn = env.emu.create_role(f"untrusting-{env.tag}", trust, "p", component_policy(Component.STORE, env.bucket))
    target = {"name": "store", "component": "store", "bucket": "b", "identity": env.assume(arn)}
    [result] = run_once(env.config([target]))
    assert not result.identity.ok and result.identity.reason is Reason.ASSUME_ROLE_DENIED
    assert {o.reason for o in result.operations} == {Reason.SKIPPED_DEPENDENCY}


def test_invalid_static_keys(env: ProbeEnv) -> None:
    target = {"name": "store", "component": "store", "bucket": "b", "identity": static("AKIAWRONGWRONGWRONG0", "x")}
    [result] = run_once(env.config([target]))
    assert not result.identity.ok and result.identity.reason is Reason.INVALID_CREDENTIALS
    # HEAD answers carry no body (a bare 403); the other requests name the key problem, and the HEADs follow them
    assert {o.operation.value: o.reason for o in result.operations if o.required} == dict.fromkeys(
        ("bucket_location", "exists", "attributes", "get", "get_range", "iter"), Reason.INVALID_CREDENTIALS)


def test_static_keys_from_env_and_file(env: ProbeEnv, tmp_path: object, monkeypatch: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    ak, sk = env.emu.create_user(f"store-{env.tag}", component_policy(Component.STORE, env.bucket))
    (tmp_path / "secret").write_text(sk + "\n")
    monkeypatch.setenv("STORE_AK", ak)  # type: ignore[attr-defined]
    ident = {"source": "static", "access_key_id": {"env": "STORE_AK"},
             "secret_access_key": {"file": str(tmp_path / "secret")}}
    StaticIdentity.model_validate(ident)
    [result] = run_once(env.config([{"name": "store", "component": "store", "bucket": "b", "identity": ident}]))
    assert result.healthy and result.identity.source == "static"
    assert result.identity.principal.endswith(f":user/store-{env.tag}")


def test_objstore_config_identity_uses_the_thanos_keys(env: ProbeEnv) -> None:
    ak, sk = env.emu.create_user(f"thanos-{env.tag}", component_policy(Component.COMPACTOR, env.bucket))
    data = env.config_dict([{"name": "compact", "component": "compactor", "bucket": "b",
                             "identity": {"source": "objstore_config"}}])
    data["buckets"]["b"]["objstore"]["config"].update(access_key=ak, secret_key=sk)
    from exporter.config import parse_config

    [result] = run_once(parse_config(data))
    assert result.healthy and result.identity.source == "objstore_config"


def test_identity_is_resolved_once_per_target_even_under_concurrency(env: ProbeEnv) -> None:
    arn = env.role("store", component_policy(Component.STORE, env.bucket))
    with RecordingProxy(env.emu.url) as proxy:
        s3 = S3Config(bucket=env.bucket, endpoint=proxy.endpoint, insecure=True)
        cache = CredentialCache(build_source(AssumeRoleIdentity.model_validate(env.assume(arn)), s3,
                                             GlobalSettings()), sts_context(s3, 5), refresh_margin=300)
        threads = [threading.Thread(target=cache.current) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _assume_role_calls(proxy) == 1


def test_instance_metadata_identity_is_the_node_role(env: ProbeEnv) -> None:
    from exporter.policies import policy_for_operations
    from exporter.profiles import PROFILES, Operation
    from tests.support.imds import IMDS

    node_arn = env.role("node", policy_for_operations(
        env.bucket, "", PROFILES[Component.COMPACTOR] - {Operation.DELETE} | {Operation.BUCKET_LOCATION}))
    sts = env.emu.client("sts", *env.exporter_keys)
    creds = sts.assume_role(RoleArn=node_arn, RoleSessionName="i-0123456789")["Credentials"]
    with IMDS("node-role", creds) as imds:
        target = {"name": "compact", "component": "compactor", "bucket": "b",
                  "identity": {"source": "instance_metadata", "endpoint": imds.url, "timeout": "1s"}}
        [result] = run_once(env.config([target]))
    assert result.identity.ok and result.identity.source == "instance_metadata"
    assert result.identity.principal.endswith(f"assumed-role/node-{env.tag}")
    assert [o.operation for o in result.required_failures()] == [Operation.DELETE]


def test_instance_metadata_unreachable(env: ProbeEnv) -> None:
    target = {"name": "compact", "component": "compactor", "bucket": "b",
              "identity": {"source": "instance_metadata", "endpoint": "http://127.0.0.1:9", "timeout": "1s",
                           "attempts": 1}}
    [result] = run_once(env.config([target]))
    assert not result.identity.ok and result.identity.reason is Reason.CONNECTION_ERROR


def test_an_unexpected_source_error_is_a_failure_not_a_crash(env: ProbeEnv, tmp_path: object) -> None:
    """A token file that is not UTF-8 makes the source raise UnicodeDecodeError: reported, not lost."""
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    token = tmp_path / "token"
    token.write_bytes(b"\xff\xfe\x00")
    target = {"name": "store", "component": "store", "bucket": "b",
              "identity": {"source": "web_identity", "role_arn": "arn:aws:iam::123456789012:role/x",
                           "token_file": str(token)}}
    [result] = run_once(env.config([target]))
    assert not result.identity.ok and result.identity.reason is Reason.OTHER
    assert "UnicodeDecodeError" in result.identity.message
    assert {o.reason for o in result.operations} == {Reason.SKIPPED_DEPENDENCY}
