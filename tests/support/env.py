"""Builds exporter configs on the moto emulator: a bucket, an exporter user, a janitor, roles per target."""

from __future__ import annotations

import json
import secrets
from typing import Any

from exporter.config import Config, parse_config
from exporter.demo.emulator import Emulator
from exporter.policies import component_policy, janitor_policy
from exporter.profiles import Component

PROBE_DIR = "objstore-permission-probe"


def static(access_key: str, secret_key: str) -> dict[str, Any]:
    return {"source": "static", "access_key_id": {"value": access_key}, "secret_access_key": {"value": secret_key}}


class ProbeEnv:
    """One fresh bucket with its own exporter and janitor users, so tests never share state."""

    def __init__(self, emu: Emulator, prefix: str = "", janitor_can_delete: bool = True) -> None:
        self.emu = emu
        self.prefix = prefix
        self.tag = secrets.token_hex(4)
        self.bucket = f"thanos-{self.tag}"
        emu.client("s3").create_bucket(Bucket=self.bucket)
        self.exporter_keys = emu.create_user(f"exporter-{self.tag}", {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
        jpolicy = janitor_policy(self.bucket, prefix, PROBE_DIR)
        if not janitor_can_delete:
            jpolicy["Statement"][-1]["Action"].remove("s3:DeleteObject")
        self.janitor_user = f"janitor-{self.tag}"
        self.janitor_keys = emu.create_user(self.janitor_user, jpolicy)

    def set_janitor_policy(self, policy: dict[str, Any]) -> None:
        self.emu.client("iam").put_user_policy(UserName=self.janitor_user, PolicyName=f"{self.janitor_user}-policy",
                                               PolicyDocument=json.dumps(policy))

    def role(self, name: str, policy: dict[str, Any]) -> str:
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": f"arn:aws:iam::{self.emu.account_id}:user/exporter-{self.tag}"}}]}
        return self.emu.create_role(f"{name}-{self.tag}", trust, "thanos-objstore", policy)

    def assume(self, role_arn: str, **extra: Any) -> dict[str, Any]:
        return {"source": "assume_role", "role_arn": role_arn, "base": static(*self.exporter_keys), **extra}

    def component_target(self, component: Component, name: str | None = None, policy: dict[str, Any] | None = None,
                         **extra: Any) -> dict[str, Any]:
        name = name or component.value
        arn = self.role(name, policy or component_policy(component, self.bucket, self.prefix))
        return {"name": name, "component": component.value, "bucket": "b", "identity": self.assume(arn), **extra}

    def config_dict(self, targets: list[dict[str, Any]], endpoint: str | None = None,
                    **global_settings: Any) -> dict[str, Any]:
        objstore: dict[str, Any] = {"type": "S3", "config": {
            "bucket": self.bucket, "endpoint": endpoint or self.emu.endpoint, "insecure": True}}
        if self.prefix:
            objstore["prefix"] = self.prefix
        settings = {"interval": "60s", "timeout": "5s", "jitter": "0s", "probe_dir": PROBE_DIR,
                    "janitor": {"identity": static(*self.janitor_keys)}, **global_settings}
        return {"global": settings, "buckets": {"b": {"objstore": objstore}}, "targets": targets}

    def config(self, targets: list[dict[str, Any]], endpoint: str | None = None, **global_settings: Any) -> Config:
        return parse_config(self.config_dict(targets, endpoint, **global_settings))

    def objects(self) -> dict[str, str]:
        """Every object in the bucket with its ETag (as the admin sees it)."""
        s3 = self.emu.client("s3")
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"]
        return out
