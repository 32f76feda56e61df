"""Bad configuration: one line naming the field and the problem, exit 2, and no request to any backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from exporter.durations import format_duration, parse_duration
from tests.support.proxy import RecordingProxy

CLI = [sys.executable, "-m", "exporter.cli"]


def _good(endpoint: str) -> dict[str, object]:
    return {
        "global": {"interval": "30s", "timeout": "5s"},
        "buckets": {"thanos": {"objstore": {"type": "S3", "config": {
            "bucket": "thanos", "endpoint": endpoint, "insecure": True}}}},
        "targets": [{"name": "monitoring/thanos-compact", "component": "compactor", "bucket": "thanos",
                     "identity": {"source": "static", "access_key_id": {"value": "AKIAEXAMPLE000000000"},
                                  "secret_access_key": {"value": "not-a-real-secret"}}}],
    }


def _set(data: dict[str, object], path: str, value: object) -> None:
    node: object = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is _DELETE:
        del node[last]  # type: ignore[attr-defined]
    else:
        node[last] = value  # type: ignore[index]


_DELETE = object()

# (what to change, value, text the one-line error must contain)
BAD = [
    ("buckets.thanos.objstore.config.foo", 1, "buckets.thanos.objstore.config.foo: unknown field"),
    ("buckets.thanos.objstore.config.endpoint", _DELETE, "buckets.thanos.objstore.config.endpoint: field required"),
    ("buckets.thanos.objstore.type", "GCS", "buckets.thanos.objstore.type: only type S3 is supported"),
    ("buckets.thanos.objstore.config.list_objects_version", "v3", "list_objects_version"),
    ("buckets.thanos.objstore.config.access_key", "AKIA", "access_key and secret_key must be given together"),
    ("buckets.thanos.objstore.config.sse_config", {"type": "SSE-KMS"}, "kms_key_id is required"),
    ("global.interval", "5 minutes", "global.interval: invalid duration"),
    ("global.jitter", "1m", "global.jitter: must be shorter than interval (30s)"),
    ("global.probe_dir", "../blocks", "global.probe_dir: must be a non-empty relative path"),
    ("global.probe_dir", "01HZX5Q2W3E4R5T6Y7V8J9K0PA", "must not look like a block ULID"),
    ("targets.0.bucket", "other", "targets[0].bucket: unknown bucket 'other'"),
    ("targets.0.component", "querier", "targets[0].component"),
    ("targets.0.identity", {"source": "irsa"}, "targets[0].identity: unknown source 'irsa'"),
    ("targets.0.identity", {"source": "assume_role"}, "targets[0].identity.role_arn: field required"),
    ("targets.0.identity", {"source": "kubernetes"}, "namespace and service_account are required"),
    ("targets.0.name", "has space", "targets[0].name: must be"),
    ("targets.0.expected_principal", "thanos-compact", "targets[0].expected_principal: not an IAM"),
    ("targets.0.profile", {"add": ["list"]}, "targets[0].profile.add[0]"),
    ("buckets.thanos.objstore.config.region", "eu_west_1", "config.region: not a valid region name"),
    ("buckets.thanos.objstore.config.endpoint", "my host:9000", "config.endpoint: not a host[:port]"),
    ("buckets.thanos.objstore.config.sse_config", {"type": "SSE-C", "encryption_key": "/nonexistent/key"},
     "encryption_key: cannot read /nonexistent/key"),
    ("buckets.thanos.objstore.config.http_config", {"tls_config": {"server_name": "x"}},
     "server_name is not supported"),
    ("targets.0.identity.access_key_id", {"env": "OPE_TEST_NOT_SET"},
     "targets[0].identity.access_key_id: environment variable OPE_TEST_NOT_SET is not set"),
    ("global.probe_dir", "01hzx5q2w3e4r5t6y7v8j9k0pa", "must not look like a block ULID"),
]


@pytest.fixture(scope="module")
def sink() -> object:
    """A backend that records any request: a bad config must not reach it."""
    with RecordingProxy("http://127.0.0.1:9") as proxy:
        yield proxy


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[f"{p}={v}"[:60] for p, v, _ in BAD])
def test_bad_config_is_one_line_naming_the_field(tmp_path: Path, sink: RecordingProxy, path: str, value: object,
                                                 expected: str) -> None:
    data = _good(sink.endpoint)
    _set(data, path, value)
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(data))
    run = subprocess.run([*CLI, "check", f"--config.file={config}"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"config error: {config}: ") and expected in lines[0], lines[0]
    assert run.stdout == ""
    assert sink.requests() == [], "nothing may be probed with a bad config"


def test_duplicate_target_names(tmp_path: Path) -> None:
    data = _good("127.0.0.1:9")
    data["targets"] = [data["targets"][0], data["targets"][0]]  # type: ignore[index]
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(data))
    run = subprocess.run([*CLI, "config", "check", f"--config.file={config}"], capture_output=True, text=True)
    assert run.returncode == 2 and "targets[1].name: duplicate target name" in run.stderr


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("global: [unclosed\n")
    run = subprocess.run([*CLI, "serve", f"--config.file={config}"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "config.file: invalid YAML: line" in run.stderr
    run = subprocess.run([*CLI, "serve", f"--config.file={tmp_path / 'nope.yml'}"], capture_output=True, text=True)
    assert run.returncode == 2 and "config.file: cannot read" in run.stderr


def test_objstore_config_file_is_the_file_thanos_uses(tmp_path: Path) -> None:
    thanos = tmp_path / "thanos.yaml"
    thanos.write_text("type: s3\nconfig:\n  bucket: thanos\n  endpoint: s3.eu-west-1.amazonaws.com\nprefix: /metrics/\n"
                      "---\nignored: second document\n")
    data = _good("127.0.0.1:9")
    data["buckets"] = {"thanos": {"objstore_config_file": str(thanos)}}
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(data))
    run = subprocess.run([*CLI, "config", "check", f"--config.file={config}"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    thanos.write_text("type: S3\nconfig:\n  bucket: thanos\n  endpoint: minio:9000\n  insecure: yes\n  bogus: 1\n")
    run = subprocess.run([*CLI, "config", "check", f"--config.file={config}"], capture_output=True, text=True)
    assert run.returncode == 2
    assert f"buckets.thanos: objstore_config_file {thanos}: config.bogus: unknown field" in run.stderr


def test_serve_config_check_flag(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(_good("127.0.0.1:9")))
    run = subprocess.run([*CLI, "serve", f"--config.file={config}", "--config.check"], capture_output=True, text=True)
    assert run.returncode == 0 and "OK (1 targets, 1 buckets)" in run.stdout
    run = subprocess.run([*CLI, "serve", f"--config.file={config}", "--web.listen-address=nope"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "--web.listen-address" in run.stderr


@given(st.integers(min_value=1, max_value=10 * 86400))
def test_durations_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "-1s", "1s 2m", "1.5.5s"])
def test_bad_durations(text: str) -> None:
    if text == "1":
        assert parse_duration(1) == 1.0
        with pytest.raises(ValueError):
            parse_duration("1")
        return
    with pytest.raises(ValueError):
        parse_duration(text)


def test_numeric_scalars_are_strings_as_in_thanos(tmp_path: Path) -> None:
    data = _good("127.0.0.1:9")
    data["buckets"]["thanos"]["objstore"]["config"]["bucket"] = 20240101  # type: ignore[index]
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(data))
    run = subprocess.run([*CLI, "config", "check", f"--config.file={config}"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_listen_port_out_of_range(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(_good("127.0.0.1:9")))
    run = subprocess.run([*CLI, "serve", f"--config.file={config}", "--web.listen-address=127.0.0.1:99999"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--web.listen-address" in run.stderr and "Traceback" not in run.stderr
