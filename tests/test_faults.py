"""Network faults, throttling and timeouts become failure reasons, never a crash or a hang."""

from __future__ import annotations

import socket
import time

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from exporter.app import run_once
from exporter.profiles import Component
from exporter.reasons import Reason, classify
from tests.support.env import ProbeEnv, static
from tests.support.proxy import RecordingProxy, Seen, s3_error


def _store_target(env: ProbeEnv) -> dict[str, object]:
    from exporter.policies import component_policy

    ak, sk = env.emu.create_user(f"store-{env.tag}", component_policy(Component.STORE, env.bucket))
    env.store_key = ak  # type: ignore[attr-defined]
    return {"name": "store", "component": "store", "bucket": "b", "identity": static(ak, sk)}


def _is_store_object_get(env: ProbeEnv, seen: Seen) -> bool:
    """Only the target's own object GETs (not the janitor's canary check)."""
    return seen.method == "GET" and seen.path.startswith(f"/{env.bucket}/") and \
        env.store_key in seen.header("Authorization")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("status", "code", "reason"), [
    (503, "SlowDown", Reason.THROTTLED),
    (500, "InternalError", Reason.SERVER_ERROR),
    (301, "PermanentRedirect", Reason.WRONG_REGION),
    (400, "AuthorizationHeaderMalformed", Reason.WRONG_REGION),
    (403, "KMS.AccessDeniedException", Reason.KMS_ACCESS_DENIED),
    (400, "ExpiredToken", Reason.EXPIRED_CREDENTIALS),
])
def test_server_answers_become_reasons(env: ProbeEnv, status: int, code: str, reason: Reason) -> None:
    target = _store_target(env)
    with RecordingProxy(env.emu.url) as proxy:
        proxy.fault = lambda seen: s3_error(status, code) if _is_store_object_get(env, seen) else None
        [result] = run_once(env.config([target], endpoint=proxy.endpoint))
    ops = {o.operation.value: o for o in result.operations}
    assert ops["get"].reason is reason and ops["get_range"].reason is reason
    assert ops["exists"].success and ops["iter"].success  # HEAD and bucket-level GET untouched


def test_missing_bucket(env: ProbeEnv) -> None:
    # with access to any bucket, S3 can say the bucket is missing (without it, AWS answers AccessDenied)
    ak, sk = env.emu.create_user(f"any-{env.tag}", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    target = {"name": "store", "component": "store", "bucket": "b", "identity": static(ak, sk)}
    data = env.config_dict([target])
    data["buckets"]["b"]["objstore"]["config"]["bucket"] = f"absent-{env.tag}"
    from exporter.config import parse_config

    [result] = run_once(parse_config(data))
    ops = {o.operation.value: o for o in result.operations}
    assert ops["iter"].reason is Reason.NO_SUCH_BUCKET
    assert ops["get"].reason is Reason.NO_SUCH_BUCKET


def test_hung_endpoint_times_out_per_operation(env: ProbeEnv) -> None:
    target = _store_target(env)

    def hang(seen: Seen) -> None:
        if _is_store_object_get(env, seen):
            time.sleep(3)
        return None

    with RecordingProxy(env.emu.url) as proxy:
        proxy.fault = hang
        started = time.monotonic()
        [result] = run_once(env.config([target], endpoint=proxy.endpoint, timeout="1s"))
        elapsed = time.monotonic() - started
    ops = {o.operation.value: o for o in result.operations}
    assert ops["get"].reason is Reason.TIMEOUT and ops["get_range"].reason is Reason.TIMEOUT
    assert ops["get"].duration_seconds < 2.5
    assert elapsed < 10, f"a cycle with two hung requests took {elapsed:.1f}s"


def test_unreachable_endpoint_is_a_connection_error(env: ProbeEnv) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = _store_target(env)
    [result] = run_once(env.config([target], endpoint=f"127.0.0.1:{port}"))
    assert result.identity.reason is Reason.CONNECTION_ERROR  # GetCallerIdentity goes to the same endpoint
    assert {o.reason for o in result.operations} == {Reason.CONNECTION_ERROR}


@given(code=st.text(max_size=40), status=st.integers(min_value=100, max_value=599), message=st.text(max_size=40))
def test_classification_is_total(code: str, status: int, message: str) -> None:
    err = ClientError({"Error": {"Code": code, "Message": message},
                       "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
    assert isinstance(classify(err), Reason)


@pytest.mark.parametrize(("code", "status", "reason"), [
    ("AccessDenied", 403, Reason.ACCESS_DENIED),
    ("", 403, Reason.ACCESS_DENIED),  # RGW STS answers without a parsable code
    ("InvalidAccessKeyId", 403, Reason.INVALID_CREDENTIALS),
    ("SignatureDoesNotMatch", 403, Reason.INVALID_CREDENTIALS),
    ("InvalidToken", 400, Reason.INVALID_CREDENTIALS),
    ("ExpiredToken", 400, Reason.EXPIRED_CREDENTIALS),
    ("NoSuchBucket", 404, Reason.NO_SUCH_BUCKET),
    ("NoSuchKey", 404, Reason.NOT_FOUND),
    ("SlowDown", 503, Reason.THROTTLED),
    ("", 429, Reason.THROTTLED),
    ("", 502, Reason.SERVER_ERROR),
    ("PermanentRedirect", 301, Reason.WRONG_REGION),
])
def test_classification_table(code: str, status: int, reason: Reason) -> None:
    err = ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")
    assert classify(err) is reason


def test_a_replaced_huge_canary_costs_no_memory_and_is_rewritten(env: ProbeEnv) -> None:
    """Anyone with s3:PutObject on the bucket can overwrite the canary; reads stop at its size."""
    from exporter.app import build_probers
    from exporter.targets import build_targets
    from tests.support.env import PROBE_DIR

    cfg = env.config([_store_target(env)])
    [prober] = build_probers(cfg, build_targets(cfg))
    first = prober.run_cycle()
    assert first is not None and first.healthy
    env.emu.client("s3").put_object(Bucket=env.bucket, Key=f"{PROBE_DIR}/canary", Body=b"x" * (8 * 1024 * 1024))
    second = prober.run_cycle()
    assert second is not None
    ops = {o.operation.value: o for o in second.operations}
    assert ops["get"].reason is Reason.WRONG_CONTENT and ops["attributes"].reason is Reason.WRONG_CONTENT
    [fresh] = build_probers(cfg, build_targets(cfg))  # a new janitor checks the canary again: rewritten
    third = fresh.run_cycle()
    assert third is not None and third.healthy


def test_a_trickling_body_is_cut_at_the_operation_timeout() -> None:
    """The per-recv read timeout does not bound a server sending one byte at a time; the deadline does."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    from exporter.objstore import S3Config
    from exporter.probes.bucket import ProbeBucket
    from exporter.probes.keyspace import Keyspace

    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "128")
            self.end_headers()
            for _ in range(128):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"127.0.0.1:{server.server_address[1]}"
        client = boto3.session.Session().client(
            "s3", endpoint_url=f"http://{endpoint}", region_name="us-east-1",
            config=Config(signature_version=UNSIGNED, read_timeout=1, s3={"addressing_style": "path"}))
        bucket = ProbeBucket(client, S3Config(bucket="b", endpoint=endpoint), Keyspace("", "probe"), timeout=1.0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            bucket.get("probe/canary", limit=128)
        assert time.monotonic() - started < 2.5
        assert classify(TimeoutError()) is Reason.TIMEOUT
    finally:
        server.shutdown()
        server.server_close()


def test_an_unexpected_error_fails_the_cycle_instead_of_losing_it(env: ProbeEnv, tmp_path: object) -> None:
    """The SSE-C key file vanishes after the config was loaded: every operation is reported failed."""
    import pathlib

    from exporter.config import parse_config

    assert isinstance(tmp_path, pathlib.Path)
    key = tmp_path / "sse-c.key"
    key.write_bytes(b"k" * 32)
    data = env.config_dict([_store_target(env)])
    data["buckets"]["b"]["objstore"]["config"]["sse_config"] = {"type": "SSE-C", "encryption_key": str(key)}
    cfg = parse_config(data)
    key.unlink()
    [result] = run_once(cfg)
    assert not result.healthy and "cycle failed: FileNotFoundError" in result.identity.message
    assert result.operations and all(not o.success for o in result.operations)
