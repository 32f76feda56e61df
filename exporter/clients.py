"""boto3 clients built the way Thanos's minio-go client would talk to the bucket.

Honours the objstore config's endpoint, TLS, addressing and region; no retries (a throttle or a 5xx is
a finding, not something to hide), and connect/read timeouts from the per-operation timeout so one hung
endpoint cannot stall a worker. One shared botocore session (its loaded service models are the expensive
part); sessions are not thread-safe, so clients are created under a lock. The clients themselves are.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig

from exporter.credentials import Credentials
from exporter.objstore import S3Config, is_aws_endpoint, region_from_endpoint

_lock = threading.Lock()
_session: botocore.session.Session | None = None


def _create_client(service: str, **kwargs: Any) -> Any:
    global _session
    with _lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session.create_client(service, **kwargs)


def endpoint_url(cfg: S3Config) -> str:
    return f"{'http' if cfg.insecure else 'https'}://{cfg.endpoint}"


def addressing_style(cfg: S3Config) -> str:
    """minio-go `auto` uses virtual-hosted style only for AWS endpoints; everything else gets path style."""
    if cfg.bucket_lookup_type == "path":
        return "path"
    if cfg.bucket_lookup_type == "virtual-hosted":
        return "virtual"
    return "virtual" if is_aws_endpoint(cfg.endpoint) else "path"


def tls_verify(cfg: S3Config) -> bool | str:
    if cfg.http_config.insecure_skip_verify or cfg.http_config.tls_config.insecure_skip_verify:
        return False
    return cfg.http_config.tls_config.ca_file or True


def configured_region(cfg: S3Config) -> str:
    """The region the client signs with when no lookup is needed: config, else from the endpoint."""
    return cfg.region or region_from_endpoint(cfg.endpoint)


def _boto_config(timeout: float, credentials: Credentials | None, pool: int = 2, **extra: Any) -> BotoConfig:
    kwargs: dict[str, Any] = {
        "connect_timeout": timeout,
        "read_timeout": timeout,
        "retries": {"max_attempts": 1, "mode": "standard"},
        "max_pool_connections": pool,
        "user_agent_extra": "objstore-permission-exporter",
        **extra,
    }
    if credentials is None:
        kwargs["signature_version"] = UNSIGNED
    return BotoConfig(**kwargs)


def _credential_kwargs(credentials: Credentials | None) -> dict[str, Any]:
    if credentials is None:
        return {}
    return {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
    }


def s3_client(cfg: S3Config, credentials: Credentials | None, region: str, timeout: float, pool: int = 2) -> Any:
    """An S3 client for the bucket; `credentials=None` sends unsigned (anonymous) requests.

    `pool`: connections kept per client; a target's client is used by one cycle at a time, the janitor's by
    every target on its bucket at once."""
    s3_settings: dict[str, Any] = {"addressing_style": addressing_style(cfg)}
    if cfg.signature_version2:
        extra: dict[str, Any] = {"signature_version": "s3"}
    else:
        extra = {"signature_version": "s3v4"} if credentials is not None else {}
    tls = cfg.http_config.tls_config
    if tls.cert_file:
        extra["client_cert"] = (tls.cert_file, tls.key_file)  # mTLS, as Thanos's transport does
    config = _boto_config(timeout, credentials, pool, s3=s3_settings, **extra)
    if credentials is None:
        config = config.merge(BotoConfig(signature_version=UNSIGNED))
    return _create_client(
        "s3",
        endpoint_url=endpoint_url(cfg),
        region_name=region or "us-east-1",
        verify=tls_verify(cfg),
        config=config,
        **_credential_kwargs(credentials),
    )


def sts_endpoint_for(cfg: S3Config, override: str | None, region: str) -> str:
    """STS endpoint: explicit override, the objstore `sts_endpoint`, AWS's regional STS, else the S3 endpoint
    itself (MinIO and Ceph RGW serve STS on the S3 port)."""
    chosen = override or cfg.sts_endpoint
    if chosen:
        return chosen if "://" in chosen else f"https://{chosen}"
    if is_aws_endpoint(cfg.endpoint):
        return aws_sts_url(region)
    return endpoint_url(cfg)


def aws_sts_url(region: str) -> str:
    """AWS's regional STS endpoint for `region`, or the global one without a region."""
    if not region:
        return "https://sts.amazonaws.com"
    return f"https://sts.{region}{'.amazonaws.com.cn' if region.startswith('cn-') else '.amazonaws.com'}"


def service_client(
    service: str, endpoint: str, region: str, credentials: Credentials | None, timeout: float,
    verify: bool | str = True,
) -> Any:
    """An STS or EKS Auth client. `credentials=None` sends unsigned requests (AssumeRoleWithWebIdentity);
    EKS Auth's AssumeRoleForPodIdentity is signed with the caller's (node) credentials, like the agent's."""
    return _create_client(
        service,
        endpoint_url=endpoint,
        region_name=region or "us-east-1",
        verify=verify,
        config=_boto_config(timeout, credentials),
        **_credential_kwargs(credentials),
    )
