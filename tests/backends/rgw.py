"""A throwaway single-node Ceph cluster with a radosgw (S3 + STS + IAM) on loopback, for tests.

One monitor, one memstore OSD and one radosgw run as foreground children of this process, in a temp
directory, on loopback ports picked at runtime (so parallel runs do not collide). No systemd, no mgr,
``auth = none``. Recipe: ``/work/shared/reference/local-backends.md`` section C (Ceph 16.2 "pacific").

Usage::

    with RGWCluster() as rgw:
        s3 = rgw.client("s3")                                   # owner/admin credentials
        s3.create_bucket(Bucket="thanos")
        keys = rgw.create_user("store")
        rgw.put_user_policy("store", "ro", {"Version": "2012-10-17", "Statement": [...]})
        arn = rgw.create_role("compactor", trust_policy={...}, role_policy={...})
        store_s3 = rgw.client("s3", access_key=keys.access_key, secret_key=keys.secret_key)

RGW 16.2 specifics (each one asserted by ``tests/rgw/test_rgw_backend.py`` unless marked):

* ARNs carry **no account id**: ``arn:aws:iam:::user/<uid>``, ``arn:aws:iam:::role/<name>``,
  ``arn:aws:sts:::assumed-role/<name>/<session>``, ``arn:aws:iam:::oidc-provider/<issuer minus scheme>``.
  A role created with a path keeps it in both (``arn:aws:iam:::role/thanos/r2``,
  ``arn:aws:sts:::assumed-role/thanos/r2/<session>``). Use these in trust and bucket policies.
* STS failures are HTTP 403 with an S3-style body; botocore gives ``Error.Code`` "AccessDenied" for a
  refused AssumeRole but **no Error at all** for a refused AssumeRoleWithWebIdentity. Classify by status.
* ``GetCallerIdentity`` is not implemented (HTTP 405).
* Unknown access key and wrong secret both give 403 ``AccessDenied`` (AWS: ``InvalidAccessKeyId`` /
  ``SignatureDoesNotMatch``), because ``rgw_s3_auth_use_sts = true`` lets the STS engine answer last.
* When no policy decides, RGW falls back to ACLs, and a bucket owner may do anything in its bucket: a
  policy that merely lacks ``s3:DeleteObject`` only denies a principal that does **not** own the bucket.
  Object ACLs apply too: the bucket owner cannot read/HEAD objects other users uploaded, and objects
  written by an assumed-role session are owned by the *user who assumed the role*.
* A user policy *does* grant access to another user's bucket (same tenant), like AWS within one account.
* ``GetBucketLocation`` answers ``"default"`` (the zonegroup's api_name), not an AWS region.
* IAM user/role/OIDC APIs are authorised by RGW *caps*, not IAM policies: the owner gets
  ``user-policy=*;roles=*;oidc-provider=*`` (plus ``users=*;buckets=*`` for the admin REST API, used by
  :meth:`RGWCluster.create_user`).
* The role and OIDC-provider APIs do not decode ``+`` (botocore's encoding of a space): role policies are
  therefore sent without whitespace and may not contain spaces at all (:func:`_policy_json`).
* Not modelled (from the reference notes, not asserted here): ``aws:SecureTransport`` over plain http,
  ``kms:*`` permissions.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

#: Binaries the cluster needs (Debian packages ceph-mon, ceph-osd, radosgw, ceph-common).
REQUIRED_BINARIES: tuple[str, ...] = (
    "ceph",
    "ceph-authtool",
    "monmaptool",
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
)

REGION = "us-east-1"
OWNER_UID = "owner"
OWNER_CAPS = "user-policy=*;roles=*;oidc-provider=*;users=*;buckets=*;metadata=*;usage=*"
RGW_NAME = "client.rgw.a"

PolicyDoc = Mapping[str, Any] | str


class RGWError(RuntimeError):
    """The cluster could not be started, or an admin operation failed."""


class UserKeys(NamedTuple):
    """Static S3 keys of an RGW user; unpacks as ``(access_key, secret_key)``."""

    access_key: str
    secret_key: str


@dataclass(frozen=True)
class _Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path  # the daemon's own log_file
    out: Path  # its captured stdout/stderr


def missing_binaries() -> list[str]:
    """Names of :data:`REQUIRED_BINARIES` not found on ``PATH``."""
    return [b for b in REQUIRED_BINARIES if shutil.which(b) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _policy_json(doc: PolicyDoc, *, no_spaces: bool = False) -> str:
    """Serialise a policy compactly (no insignificant whitespace).

    botocore form-encodes spaces as ``+``, and RGW 16's role and OIDC-provider APIs do not decode ``+``
    (CreateRole answers ``MalformedPolicyDocument``; PutRolePolicy/CreateOpenIDConnectProvider store a
    literal ``+``), while PutUserPolicy does. Sending ``%20`` instead breaks RGW's SigV4 check. So role
    documents must not contain spaces at all (``no_spaces``), not even inside string values.
    """
    obj = json.loads(doc) if isinstance(doc, str) else doc
    text = json.dumps(obj, separators=(",", ":"))
    if no_spaces and " " in text:
        raise ValueError(f"RGW 16's role API mangles spaces (sent as '+'); remove them from: {text}")
    return text


def _tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_bytes()[-64 * 1024 :].decode("utf-8", "replace")
    except OSError:
        return f"<{path.name}: missing>"
    return "\n".join(data.splitlines()[-lines:]) or f"<{path.name}: empty>"


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask the kernel to SIGKILL the daemon when the process that started it dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


_DIR_PREFIX = "ope-rgw-"
_OWNER_FILE = "owner.pid"


def _remove_stale_dirs(base: str | os.PathLike[str] | None) -> None:
    """Remove cluster dirs left by runs that were SIGKILLed (their daemons died with them, via
    PR_SET_PDEATHSIG, but nothing removed the directory). Only dirs whose recorded owner PID is gone."""
    for path in Path(base or tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        try:
            pid = int((path / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


_LIVE: set[RGWCluster] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for cluster in live:
        cluster.stop()


class RGWCluster:
    """Single-node Ceph + radosgw on ``127.0.0.1``; see the module docstring.

    ``start()`` (or ``with``) bootstraps it and raises :class:`RGWError` with daemon log tails on failure;
    ``stop()`` is idempotent and also runs at interpreter exit. Daemons additionally get
    ``PR_SET_PDEATHSIG`` so a killed test runner does not leave them behind (the signal fires when the
    *thread* that started them exits: start the cluster from a long-lived thread, e.g. pytest's main one).
    """

    def __init__(
        self,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 90.0,
        command_timeout: float = 30.0,
        keep_dir: bool = False,
    ) -> None:
        self._base_dir = base_dir
        self.startup_timeout = startup_timeout
        self.command_timeout = command_timeout
        self.keep_dir = keep_dir
        self.dir: Path | None = None
        self.mon_port = 0
        self.port = 0
        self.owner = UserKeys("", "")
        #: Seconds from ``start()`` until the owner user existed (and RGW answered HTTP 200).
        self.bootstrap_seconds: float | None = None
        #: Milestones (name, seconds since start) of the last bootstrap, for diagnostics.
        self.timings: list[tuple[str, float]] = []
        self._daemons: list[_Daemon] = []
        self._env: dict[str, str] = {}
        self._lock = threading.Lock()
        self._boto = boto3.session.Session()  # model loading is cached per session: ~4x faster clients
        self._owner_clients: dict[str, Any] = {}
        self._client_lock = threading.RLock()  # boto3 sessions are not thread-safe

    # ----------------------------------------------------------------------------------- addresses
    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``: host:port without scheme, as Thanos objstore configs write it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, for boto3's ``endpoint_url``."""
        return f"http://{self.endpoint}"

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the running daemons (``mon``, ``osd``, ``rgw``)."""
        with self._lock:
            return {d.name: d.proc.pid for d in self._daemons}

    # ----------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Bootstrap mon, OSD and radosgw, wait until S3 answers, create the owner user."""
        if self._daemons:
            raise RGWError("cluster already started")
        missing = missing_binaries()
        if missing:
            raise RGWError(f"Ceph binaries not found on PATH: {', '.join(missing)}")
        _remove_stale_dirs(self._base_dir)
        with _LIVE_LOCK:
            _LIVE.add(self)
        t0 = time.monotonic()
        self.timings = []
        try:
            for attempt in range(3):
                try:
                    self._bootstrap(t0, retry=attempt > 0)
                    break
                except _PortInUse:
                    # Another process grabbed a port between our probe and the daemon's bind.
                    self._teardown()
                    if attempt == 2:
                        raise RGWError("could not bind free loopback ports after 3 attempts") from None
        except BaseException:
            self.stop()
            raise
        self.bootstrap_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Kill radosgw (SIGKILL), then the OSD and the mon; reap them; remove the directory."""
        self._teardown()
        with self._client_lock:
            self._owner_clients.clear()
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def _teardown(self) -> None:
        with self._lock:
            daemons, self._daemons = self._daemons, []
        # radosgw ignores SIGTERM once the mon is gone, so: rgw hard, then osd, then mon.
        order = sorted(daemons, key=lambda d: {"rgw": 0, "osd": 1, "mon": 2}[d.name])
        for d in order:
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGKILL if d.name == "rgw" else signal.SIGTERM)
                try:
                    d.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait(timeout=10)

    # ----------------------------------------------------------------------------------- bootstrap
    def _mark(self, t0: float, what: str) -> None:
        self.timings.append((what, round(time.monotonic() - t0, 2)))

    def _bootstrap(self, t0: float, *, retry: bool) -> None:
        if retry and self.dir is not None:  # after a port collision: start from scratch
            shutil.rmtree(self.dir, ignore_errors=True)
            self._mark(t0, "retry (port in use)")
        self.dir = d = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=self._base_dir))
        (d / _OWNER_FILE).write_text(str(os.getpid()))
        for sub in ("log", "run", "mon", "osd", "rgw", "crash"):
            (d / sub).mkdir()
        self.mon_port = _free_port()
        self.port = _free_port()
        while self.port == self.mon_port:
            self.port = _free_port()
        fsid = str(uuid.uuid4())
        conf = d / "ceph.conf"
        conf.write_text(self._config(fsid))
        self._env = {**os.environ, "CEPH_CONF": str(conf), "CEPH_ARGS": f"--conf {conf}"}

        keyring = d / "keyring"
        self._run(["ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "mon.",
                   "--cap", "mon", "allow *"])
        self._run(["ceph-authtool", str(keyring), "--gen-key", "-n", "client.admin",
                   "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mds", "allow *"])
        self._run(["monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]",
                   "--fsid", fsid, str(d / "monmap")])
        self._run(["ceph-mon", "--mkfs", "-i", "a", "--monmap", str(d / "monmap"), "--keyring", str(keyring)])
        self._spawn("mon", ["ceph-mon", "-i", "a", "-f"], d / "log" / "mon.a.log")
        self._mark(t0, "mon started")

        osd_uuid = str(uuid.uuid4())
        osd_id = self._ceph("osd", "new", osd_uuid).strip()
        if not osd_id.isdigit():
            raise self._fail(f"unexpected output of 'ceph osd new': {osd_id!r}")
        self._mark(t0, "mon up (osd registered)")
        (d / "osd" / f"ceph-{osd_id}").mkdir()
        self._run(["ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid])
        self._spawn("osd", ["ceph-osd", "-i", osd_id, "-f"], d / "log" / f"osd.{osd_id}.log")
        self._mark(t0, "osd started")
        # radosgw waits by itself for the OSD (it needs it to create its pools); no need to poll here.
        self._spawn("rgw", ["radosgw", "-n", RGW_NAME, "-f"], d / "log" / f"{RGW_NAME}.log")
        self._wait_http(t0)
        self._mark(t0, "rgw http 200")

        self.owner = UserKeys(_gen_access_key(), _gen_secret())
        self.admin("user", "create", f"--uid={OWNER_UID}", f"--display-name={OWNER_UID}",
                   f"--access-key={self.owner.access_key}", f"--secret={self.owner.secret_key}")
        self.admin("caps", "add", f"--uid={OWNER_UID}", f"--caps={OWNER_CAPS}")
        self._mark(t0, "owner user ready")

    def _config(self, fsid: str) -> str:
        d = self.dir
        assert d is not None
        return f"""[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{self.mon_port}
mon_initial_members = a
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = {d}/keyring
run_dir = {d}/run
admin_socket = {d}/run/$name.asok
log_file = {d}/log/$name.log
mon_cluster_log_file = {d}/log/cluster.log
crash_dir = {d}/crash
mon_data = {d}/mon/$cluster-$id
osd_data = {d}/osd/$cluster-$id
osd_objectstore = memstore
memstore_device_bytes = 1073741824
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 1
ms_bind_ipv6 = false
# Fail fast (and let us retry on another port) instead of retrying a taken port 3 times 5 s apart.
ms_bind_retry_count = 1
ms_bind_retry_delay = 1
# Every osdmap change (pool create, application enable, OSD boot) waits for the next Paxos proposal,
# 1 s by default; RGW makes ~12 of them before it answers. 50 ms makes the bootstrap ~3x faster.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[client.rgw.a]
ms_mon_client_mode = crc
rgw_frontends = beast endpoint=127.0.0.1:{self.port}
rgw_data = {d}/rgw
rgw_thread_pool_size = 16
rgw_enable_apis = s3, admin, sts, iam
rgw_sts_key = {secrets.token_hex(8)}
rgw_s3_auth_use_sts = true
"""

    def _run(self, argv: Sequence[str], *, timeout: float | None = None) -> str:
        """Run a Ceph CLI command, bounded by ``timeout``; fail early if one of our daemons dies meanwhile
        (so e.g. a mon that could not bind does not leave ``ceph osd new`` waiting for its timeout)."""
        limit = timeout or self.command_timeout
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(list(argv), env=self._env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            deadline = time.monotonic() + limit
            try:
                while True:
                    try:
                        proc.wait(timeout=0.1)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    self._check_alive()
                    if time.monotonic() > deadline:
                        raise self._fail(f"{argv[0]} timed out after {limit:.0f}s: {' '.join(argv)}")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        if proc.returncode != 0:
            self._check_alive()
            raise self._fail(f"{' '.join(argv)} exited {proc.returncode}:\n{stderr[-3000:]}{stdout[-1000:]}")
        return stdout

    def _ceph(self, *args: str) -> str:
        connect = max(5, int(self.command_timeout) - 5)
        return self._run(["ceph", "--connect-timeout", str(connect), *args])

    def admin(self, *args: str, timeout: float | None = None) -> str:
        """Run ``radosgw-admin ARGS`` against this cluster (bounded by ``timeout``); return stdout."""
        if not self._daemons:
            raise RGWError("cluster is not running")
        return self._run(["radosgw-admin", "-n", "client.admin", *args], timeout=timeout)

    def _spawn(self, name: str, argv: list[str], log: Path) -> None:
        assert self.dir is not None
        out = self.dir / "log" / f"{name}.out"
        with out.open("wb") as fh:
            proc = subprocess.Popen(
                argv, env=self._env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # only a prctl: safe between fork and exec
            )
        with self._lock:
            self._daemons.append(_Daemon(name, proc, log, out))

    def _check_alive(self) -> None:
        for dmn in self._daemons:
            code = dmn.proc.poll()
            if code is not None:
                text = _tail(dmn.log, 400) + _tail(dmn.out, 50)
                # EADDRINUSE: radosgw exits with 98; the mon logs "bind ... (98) Address already in use".
                if code == 98 or "Address already in use" in text:
                    raise _PortInUse(dmn.name)
                raise self._fail(f"{dmn.name} exited unexpectedly with status {code}")

    def _wait_http(self, t0: float) -> None:
        deadline = t0 + self.startup_timeout
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise self._fail(f"radosgw did not answer HTTP 200 on {self.url} within "
                                 f"{self.startup_timeout:.0f}s")
            time.sleep(0.2)

    def _fail(self, msg: str) -> RGWError:
        parts = [msg, f"milestones: {self.timings}", f"dir: {self.dir}"]
        for dmn in self._daemons:
            state = "running" if dmn.proc.poll() is None else f"exited {dmn.proc.returncode}"
            parts.append(f"--- {dmn.name} (pid {dmn.proc.pid}, {state}) {dmn.log}:\n{_tail(dmn.log)}")
            parts.append(f"--- {dmn.name} stdout/stderr:\n{_tail(dmn.out, 15)}")
        return RGWError("\n".join(parts))

    # ----------------------------------------------------------------------------------- clients
    def client(
        self,
        service: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        config: Config | None = None,
    ) -> Any:
        """A boto3 client (``s3``, ``iam`` or ``sts``) for this RGW, over http, path-style, region
        :data:`REGION`. Defaults to the owner's keys; pass a user's or an STS session's to act as them.
        Retries are off so every call is exactly one request (tests assert exact outcomes)."""
        if access_key is None:
            if secret_key is not None or session_token is not None:
                raise ValueError("secret_key/session_token given without access_key")
            if config is None:
                with self._client_lock:
                    if service not in self._owner_clients:
                        self._owner_clients[service] = self._new_client(service, *self.owner, None, None)
                    return self._owner_clients[service]
            access_key, secret_key = self.owner
        return self._new_client(service, access_key, secret_key, session_token, config)

    def _new_client(
        self, service: str, access_key: str, secret_key: str | None, session_token: str | None,
        config: Config | None,
    ) -> Any:
        base = Config(
            region_name=REGION,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
        )
        with self._client_lock:
            return self._boto.client(
                service,
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                aws_session_token=session_token,
                config=base.merge(config) if config is not None else base,
            )

    def _admin_api(self, method: str, path: str, params: Mapping[str, str]) -> Any:
        """Call RGW's admin REST API (``/admin/...``) signed with the owner's keys."""
        query = urllib.parse.urlencode(params)
        req = AWSRequest(method=method, url=f"{self.url}{path}?{query}")
        S3SigV4Auth(BotoCredentials(*self.owner), "s3", REGION).add_auth(req)
        prepared = req.prepare()
        http_req = urllib.request.Request(prepared.url, method=method, headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(http_req, timeout=self.command_timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            raise RGWError(f"admin API {method} {path} {params}: HTTP {e.code}: {e.read()[:500]!r}") from None
        return json.loads(body) if body else None

    # ----------------------------------------------------------------------------------- identities
    def create_user(self, uid: str, *, display_name: str | None = None, caps: str | None = None) -> UserKeys:
        """Create an RGW user with fresh static keys. Its ARN is ``arn:aws:iam:::user/<uid>``."""
        keys = UserKeys(_gen_access_key(), _gen_secret())
        params = {"uid": uid, "display-name": display_name or uid, "access-key": keys.access_key,
                  "secret-key": keys.secret_key, "key-type": "s3", "generate-key": "False"}
        if caps:
            params["user-caps"] = caps
        self._admin_api("PUT", "/admin/user", params)
        return keys

    @staticmethod
    def user_arn(uid: str) -> str:
        return f"arn:aws:iam:::user/{uid}"

    @staticmethod
    def role_arn(name: str, path: str = "/") -> str:
        return f"arn:aws:iam:::role{path}{name}"

    def put_user_policy(self, uid: str, name: str, doc: PolicyDoc) -> None:
        """Attach an inline IAM policy to user ``uid`` (RGW IAM API ``PutUserPolicy`` as the owner)."""
        self.client("iam").put_user_policy(UserName=uid, PolicyName=name, PolicyDocument=_policy_json(doc))

    def create_role(
        self,
        name: str,
        trust_policy: PolicyDoc,
        role_policy: PolicyDoc | None = None,
        *,
        policy_name: str = "policy",
        path: str = "/",
        max_session_duration: int = 3600,
    ) -> str:
        """Create a role with a trust policy (and optionally one inline permission policy); return its
        ARN, ``arn:aws:iam:::role<path><name>`` (``arn:aws:iam:::role/<name>`` for the default path)."""
        iam = self.client("iam")
        resp = iam.create_role(
            RoleName=name,
            Path=path,
            AssumeRolePolicyDocument=_policy_json(trust_policy, no_spaces=True),
            MaxSessionDuration=max_session_duration,
        )
        if role_policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName=policy_name,
                                PolicyDocument=_policy_json(role_policy, no_spaces=True))
        return str(resp["Role"]["Arn"])

    def create_oidc_provider(
        self, issuer_url: str, client_ids: Iterable[str], thumbprints: Iterable[str]
    ) -> str:
        """Register an OpenID Connect provider (for AssumeRoleWithWebIdentity); return its ARN,
        ``arn:aws:iam:::oidc-provider/<issuer without scheme>``. Thumbprints are SHA-1 hex of the
        issuer's signing certificate(s) (RGW checks them against the JWKS ``x5c`` certificates)."""
        resp = self.client("iam").create_open_id_connect_provider(
            Url=issuer_url, ClientIDList=list(client_ids), ThumbprintList=list(thumbprints))
        return str(resp["OpenIDConnectProviderArn"])

    # ----------------------------------------------------------------------------------- buckets
    def create_bucket(self, name: str, *, policy: PolicyDoc | None = None) -> None:
        """Create a bucket owned by the owner user, optionally with a bucket policy."""
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if policy is not None:
            s3.put_bucket_policy(Bucket=name, Policy=_policy_json(policy))

    def put_bucket_policy(self, bucket: str, policy: PolicyDoc) -> None:
        self.client("s3").put_bucket_policy(Bucket=bucket, Policy=_policy_json(policy))


class _PortInUse(RGWError):
    pass


_KEY_ALPHABET = string.ascii_uppercase + string.digits


def _gen_access_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(20))


def _gen_secret() -> str:
    return secrets.token_urlsafe(30)[:40]
