"""Maps a config's `source:` onto its IdentitySource (the one place that knows every plug-in)."""

from __future__ import annotations

import logging
import os

from exporter.clients import configured_region, sts_endpoint_for, tls_verify
from exporter.config import (
    AssumeRoleIdentity,
    DefaultIdentity,
    GlobalSettings,
    Identity,
    InstanceMetadataIdentity,
    KubernetesIdentity,
    KubernetesSettings,
    ObjstoreConfigIdentity,
    StaticIdentity,
    WebIdentityIdentity,
)
from exporter.identities.assume_role import AssumeRoleSource
from exporter.identities.base import IdentitySource
from exporter.identities.default import DefaultSource
from exporter.identities.instance_metadata import InstanceMetadataSource
from exporter.identities.kubernetes import KubernetesAPI, KubernetesSource
from exporter.identities.objstore_config import ObjstoreConfigSource
from exporter.identities.static import StaticSource
from exporter.identities.sts_context import STSContext
from exporter.identities.web_identity import WebIdentitySource
from exporter.objstore import S3Config

log = logging.getLogger(__name__)


def _own_pod_role() -> bool:
    """Does the exporter's default chain resolve to its own pod role (which it would pick before the node's)?"""
    return any(os.environ.get(v) for v in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI"))


_apis: dict[tuple[KubernetesSettings, float], KubernetesAPI] = {}


def kubernetes_api(settings: KubernetesSettings, timeout: float) -> KubernetesAPI:
    """One Kubernetes API client per process (per settings), shared by every target."""
    key = (settings, timeout)
    if key not in _apis:
        _apis[key] = KubernetesAPI(settings, timeout)
    return _apis[key]


def sts_context(s3: S3Config, timeout: float, endpoint: str | None = None, region: str | None = None) -> STSContext:
    reg = region or configured_region(s3) or "us-east-1"
    return STSContext(sts_endpoint_for(s3, endpoint, reg), reg, timeout, tls_verify(s3))


def build_source(
    cfg: Identity, s3: S3Config, settings: GlobalSettings, namespace: str = "", service_account: str = ""
) -> IdentitySource:
    timeout = settings.timeout
    if isinstance(cfg, StaticIdentity):
        return StaticSource(cfg)
    if isinstance(cfg, DefaultIdentity):
        return DefaultSource(cfg)
    if isinstance(cfg, InstanceMetadataIdentity):
        return InstanceMetadataSource(cfg)
    if isinstance(cfg, ObjstoreConfigIdentity):
        return ObjstoreConfigSource(s3)
    if isinstance(cfg, AssumeRoleIdentity):
        base = build_source(cfg.base, s3, settings)
        return AssumeRoleSource(cfg, base, sts_context(s3, timeout, cfg.sts_endpoint, cfg.sts_region))
    if isinstance(cfg, WebIdentityIdentity):
        return WebIdentitySource(cfg, sts_context(s3, timeout, cfg.sts_endpoint, cfg.sts_region))
    if isinstance(cfg, KubernetesIdentity):
        if cfg.fallback == "node" and isinstance(cfg.node_identity, DefaultIdentity) and _own_pod_role():
            log.warning("fallback: node probes as the exporter's own IRSA/Pod Identity role, not the node's; "
                        "set node_identity: {source: instance_metadata} target=%s/%s", namespace, service_account)
        node = build_source(cfg.node_identity, s3, settings) if (
            cfg.fallback == "node" or cfg.mode == "pod_identity") else None
        return KubernetesSource(
            cfg, namespace, service_account, kubernetes_api(settings.kubernetes, timeout), s3,
            sts_context(s3, timeout, cfg.sts_endpoint, cfg.sts_region), node)
    raise TypeError(f"unknown identity config {type(cfg).__name__}")
