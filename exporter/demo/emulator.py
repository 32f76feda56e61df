"""The demo's S3/STS/IAM emulator: moto in server mode on loopback, with IAM authorization enforced.

moto answers real HTTP like AWS does and evaluates identity policies (Allow/Deny, resources, prefixes) for
static keys, AssumeRole and AssumeRoleWithWebIdentity sessions. It is not faithful everywhere (no trust-policy
checks and no token validation for web identity, no 403-vs-404 for missing keys, no KMS); the project's Ceph
RGW test tier covers those. One patch makes moto treat an unsigned AssumeRoleWithWebIdentity as AWS does (see
`allow_unsigned_web_identity`). Tests run it in-process; the demo runs it in a child process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import boto3

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
REGION = "us-east-1"
_UNAUTHENTICATED_STS_ACTIONS = frozenset({"AssumeRoleWithWebIdentity"})


def allow_unsigned_web_identity() -> None:
    """Patch moto (the emulator, not boto3 and not the exporter) so unsigned AssumeRoleWithWebIdentity works.

    Why: in AWS, sts:AssumeRoleWithWebIdentity is an unauthenticated call (the web identity token is the
    credential), and botocore, like every AWS SDK, sends it unsigned. moto 5.x with IAM authorization enforced
    runs its signature check on every action, finds no `Authorization` header and fails with a KeyError, which
    the client sees as an HTTP 500. The exporter's Kubernetes (IRSA) identity path could then not run on the
    emulator at all. This tells moto's authorizer what AWS does: an unsigned AssumeRoleWithWebIdentity is not
    subject to signature/IAM checks. Signed requests and every other action are checked exactly as before.

    What this does NOT make faithful: moto does not validate web identity tokens (signature, issuer, audience,
    expiry) nor evaluate the role's trust policy for web identity, so any token yields credentials for any
    role. The Ceph RGW test tier covers real token validation and trust conditions. Idempotent.
    """
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action
    if getattr(original, "_ope_unsigned_web_identity", False):
        return

    def authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        if "Authorization" not in self.headers and self._get_action() in _UNAUTHENTICATED_STS_ACTIONS:
            return  # as in AWS: the token, not a signature, authenticates this call
        original(self, iam_request_cls, resource)

    authenticate_and_authorize_action._ope_unsigned_web_identity = True  # type: ignore[attr-defined]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_authorize_action  # type: ignore[method-assign]


@dataclass
class Emulator:
    """A running emulator; `admin_*` are throwaway keys that exist only inside it."""

    server: Any
    url: str
    endpoint: str
    admin_access_key_id: str = ""
    admin_secret_access_key: str = ""
    account_id: str = "123456789012"
    _session: Any = field(default_factory=boto3.session.Session, repr=False)
    _admin_clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, access_key_id: str | None = None, secret_access_key: str | None = None,
               session_token: str | None = None) -> Any:
        if access_key_id is None and session_token is None and self.admin_access_key_id:
            if service not in self._admin_clients:
                self._admin_clients[service] = self._session.client(
                    service, endpoint_url=self.url, region_name=REGION,
                    aws_access_key_id=self.admin_access_key_id, aws_secret_access_key=self.admin_secret_access_key)
            return self._admin_clients[service]
        return self._session.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=access_key_id or self.admin_access_key_id or "bootstrap",
            aws_secret_access_key=secret_access_key or self.admin_secret_access_key or "bootstrap",
            aws_session_token=session_token,
        )

    def enforce_iam(self, enforce: bool = True) -> None:
        """moto's runtime switch for IAM authorization (`0` = check every request, `inf` = off)."""
        req = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth", data=b"0" if enforce else b"inf", method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            answer.read()

    def create_user(self, name: str, policy: dict[str, Any], policy_name: str | None = None) -> tuple[str, str]:
        """An IAM user with one inline policy (`<name>-policy` unless named) and an access key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=policy_name or f"{name}-policy",
                            PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def create_role(self, name: str, trust: dict[str, Any], policy_name: str, policy: dict[str, Any]) -> str:
        iam = self.client("iam")
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
        return arn

    def create_oidc_provider(self, issuer_url: str, audiences: list[str], thumbprint: str) -> str:
        """Register a Kubernetes ServiceAccount issuer, as `eksctl utils associate-iam-oidc-provider` does."""
        answer = self.client("iam").create_open_id_connect_provider(
            Url=issuer_url, ClientIDList=audiences, ThumbprintList=[thumbprint])
        return str(answer["OpenIDConnectProviderArn"])

    def stop(self) -> None:
        self.server.stop()


class _ServerProcess:
    """moto in a child process (`python -m exporter.demo.emulator`), so its request handling runs on another core.

    The child prints its port, then serves until its stdin closes: when this process exits, however it dies,
    the pipe closes and the child stops, so no emulator is left behind.
    """

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter.demo.emulator"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], startup_timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError("the S3/STS/IAM emulator process did not start")
        address = json.loads(line)
        self.host, self.port = str(address["host"]), int(address["port"])

    def get_host_and_port(self) -> tuple[str, int]:
        return self.host, self.port

    def stop(self) -> None:
        """Terminate the child (a throwaway in-memory server: nothing to flush) and reap it. Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _threaded_server() -> Any:
    from moto.server import ThreadedMotoServer

    allow_unsigned_web_identity()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def start_emulator(separate_process: bool = False) -> Emulator:
    """Start moto on a free loopback port with an admin user; IAM enforcement is switched on by the caller.

    In this process by default (tests may inspect moto's state); `separate_process=True` runs it in a child
    process, which makes the demo's probe cycles faster on multi-core machines.
    """
    server: Any = _ServerProcess() if separate_process else _threaded_server()
    host, port = server.get_host_and_port()
    emu = Emulator(server, f"http://{host}:{port}", f"{host}:{port}")
    try:
        emu.enforce_iam(False)
        emu.admin_access_key_id, emu.admin_secret_access_key = emu.create_user("emulator-admin", ADMIN_POLICY)
        emu.account_id = str(emu.client("sts").get_caller_identity()["Account"])
    except BaseException:
        server.stop()
        raise
    return emu


def _serve_until_stdin_closes() -> None:
    server = _threaded_server()
    host, port = server.get_host_and_port()
    print(json.dumps({"host": host, "port": port}), flush=True)
    try:
        sys.stdin.read()  # EOF when the parent closes the pipe or exits
    finally:
        server.stop()


if __name__ == "__main__":
    _serve_until_stdin_closes()
