"""`serve` needs no writable filesystem: a full probe cycle with the root filesystem mounted read-only.

There is no container engine here, so this approximates the Deployment's securityContext with the same kernel
features: a private mount namespace whose / is remounted read-only (readOnlyRootFilesystem), no capabilities
and no_new_privs (capabilities drop ALL, allowPrivilegeEscalation false), the image's uid when the interpreter
is reachable for it, and the image's ENV. The exporter probes a real S3 API (moto) with a write-heavy profile
(compactor: upload, multipart upload, delete) plus the janitor, then serves /metrics and shuts down on SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.demo.emulator import Emulator
from tests.deploy.support import REPO, image_env, parse_dockerfile

READ_ONLY = "mount -o remount,bind,ro / && exec \"$@\""


def _namespace_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", READ_ONLY, "sh",
         "sh", "-c", "! touch /.objstore-permission-exporter-ro-probe 2>/dev/null"],
        capture_output=True, timeout=30)
    return probe.returncode == 0


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can execute `path` (every directory on the way searchable)."""
    real = path.resolve()
    for parent in [*reversed(real.parents), real]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            return False
    return bool(real.stat().st_mode & stat.S_IROTH)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.fixture
def s3(emulator: Emulator) -> tuple[str, str, str, str]:
    """A bucket on the session's IAM-enforcing emulator and a user that may use it: (endpoint, bucket, key,
    secret). A second in-process moto would share (and fight over) moto's process-wide auth switch."""
    bucket = f"thanos-ro-{uuid.uuid4().hex[:8]}"
    emulator.client("s3").create_bucket(Bucket=bucket)
    key, secret = emulator.create_user(f"ro-{bucket}", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})
    return emulator.endpoint, bucket, key, secret


def test_serve_runs_a_full_cycle_on_a_read_only_root(s3: tuple[str, str, str, str]) -> None:
    endpoint, bucket, key, secret = s3
    if not _namespace_works():
        pytest.skip("cannot remount / read-only in a private mount namespace (needs unshare/setpriv as root)")
    final = parse_dockerfile((REPO / "Dockerfile").read_text())[-1]
    uid, _, gid = final.args("USER")[-1].partition(":")
    script = Path(sys.executable).parent / "objstore-permission-exporter"
    as_image_user = _reachable_by_others(Path(sys.executable))

    workdir = Path(tempfile.mkdtemp(prefix="ope-ro-"))
    workdir.chmod(0o755)
    config = workdir / "config.yml"
    creds = f"{{access_key_id: {{value: {key}}}, secret_access_key: {{value: {secret}}}}}"
    config.write_text(f"""\
global:
  interval: 60s
  timeout: 5s
  jitter: 1s
  janitor:
    identity: {{source: static, {creds[1:-1]}}}
buckets:
  thanos:
    objstore:
      type: S3
      config: {{bucket: {bucket}, endpoint: "{endpoint}", region: us-east-1, insecure: true}}
      prefix: cluster-a
targets:
  - name: monitoring/thanos-compact
    component: compactor
    identity: {{source: static, {creds[1:-1]}}}
    bucket: thanos
""")
    config.chmod(0o644)

    env = {k: v for k, v in image_env(final).items() if "$" not in v}
    env |= {"PATH": f"{script.parent}:/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true", "LANG": "C.UTF-8"}
    drop = ["setpriv", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all"]
    if as_image_user:
        drop += [f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups"]
    port = _free_port()
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY, "sh", *drop,
           str(script), "serve", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(f"{base}/-/ready")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.3)
        assert status == 200, "not ready within 60s"
        assert _get(f"{base}/-/healthy")[0] == 200
        code, text = _get(f"{base}/metrics")
        assert code == 200
        samples = {
            (s.name, s.labels.get("operation")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.labels.get("target") == "monitoring/thanos-compact"
        }
        required = {op for (name, op), v in samples.items() if name == "objstore_permission_probe_required" and v == 1}
        assert {"upload", "upload_multipart", "delete", "iter", "get", "exists"} <= required
        failed = {op for op in required if samples[("objstore_permission_probe_success", op)] != 1}
        assert not failed, f"required operations failed on a read-only root: {failed}"
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        shutil.rmtree(workdir, ignore_errors=True)
    assert proc.returncode == 0, out
    for sign in ("Read-only file system", "Errno 30", "Permission denied", "Traceback"):
        assert sign not in out, out
    if not as_image_user:
        # Still meaningful (no capabilities, read-only root), but say why the uid was not switched.
        print(f"ran as uid {os.getuid()} without capabilities: {sys.executable} is not reachable for uid {uid}")
