"""The demo's S3/STS/IAM emulator: moto in server mode on loopback, with IAM authorization enforced.

moto answers real HTTP like AWS does and evaluates identity policies (Allow/Deny, resources, prefixes) for
static keys and AssumeRole sessions. It is not faithful everywhere (no trust-policy checks for web identity,
no 403-vs-404 for missing keys, no KMS); the project's Ceph RGW test tier covers those.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import boto3

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
REGION = "us-east-1"


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

    def create_user(self, name: str, policy: dict[str, Any]) -> tuple[str, str]:
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def create_role(self, name: str, trust: dict[str, Any], policy_name: str, policy: dict[str, Any]) -> str:
        iam = self.client("iam")
        arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
        return arn

    def stop(self) -> None:
        self.server.stop()


def start_emulator() -> Emulator:
    """Start moto on a free loopback port with an admin user; IAM enforcement is switched on by the caller."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    emu = Emulator(server, f"http://{host}:{port}", f"{host}:{port}")
    emu.enforce_iam(False)
    emu.admin_access_key_id, emu.admin_secret_access_key = emu.create_user("emulator-admin", ADMIN_POLICY)
    emu.account_id = str(emu.client("sts").get_caller_identity()["Account"])
    return emu
