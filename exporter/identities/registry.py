"""Maps a config's `source:` onto its IdentitySource (the one place that knows every plug-in)."""

from __future__ import annotations

from exporter.clients import configured_region, sts_endpoint_for, tls_verify
from exporter.config import (
    AssumeRoleIdentity,
    DefaultIdentity,
    ObjstoreConfigIdentity,
    StaticIdentity,
    WebIdentityIdentity,
)
from exporter.identities.assume_role import AssumeRoleSource
from exporter.identities.base import IdentitySource
from exporter.identities.default import DefaultSource
from exporter.identities.objstore_config import ObjstoreConfigSource
from exporter.identities.static import StaticSource
from exporter.identities.sts_context import STSContext
from exporter.identities.web_identity import WebIdentitySource
from exporter.objstore import S3Config

AnyIdentity = StaticIdentity | DefaultIdentity | ObjstoreConfigIdentity | AssumeRoleIdentity | WebIdentityIdentity


def sts_context(s3: S3Config, timeout: float, endpoint: str | None = None, region: str | None = None) -> STSContext:
    reg = region or configured_region(s3) or "us-east-1"
    return STSContext(sts_endpoint_for(s3, endpoint, reg), reg, timeout, tls_verify(s3))


def build_source(cfg: AnyIdentity, s3: S3Config, timeout: float) -> IdentitySource:
    if isinstance(cfg, StaticIdentity):
        return StaticSource(cfg)
    if isinstance(cfg, DefaultIdentity):
        return DefaultSource(cfg)
    if isinstance(cfg, ObjstoreConfigIdentity):
        return ObjstoreConfigSource(s3)
    if isinstance(cfg, AssumeRoleIdentity):
        base = build_source(cfg.base, s3, timeout)
        return AssumeRoleSource(cfg, base, sts_context(s3, timeout, cfg.sts_endpoint, cfg.sts_region))
    if isinstance(cfg, WebIdentityIdentity):
        return WebIdentitySource(cfg, sts_context(s3, timeout, cfg.sts_endpoint, cfg.sts_region))
    raise TypeError(f"unknown identity config {type(cfg).__name__}")
