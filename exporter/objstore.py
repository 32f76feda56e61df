"""Thanos objstore bucket configs (`type: S3`, `config:`, `prefix:`), validated as strictly as Thanos does.

Operators point the exporter at the very file their Thanos components use, so the probe honours the same
endpoint, region, addressing, TLS, SSE and list settings. Unknown keys are rejected (Thanos parses with
`yaml.UnmarshalStrict`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from exporter.durations import parse_duration


class _Strict(BaseModel):
    # go-yaml keeps a scalar's text in a string field, so Thanos accepts `bucket: 20240101`: so do we
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)


_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")  # what botocore accepts
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-_]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")


class TLSConfig(_Strict):
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _supported(self) -> TLSConfig:
        if self.server_name:
            raise ValueError("server_name is not supported by the exporter (the endpoint's host name is verified)")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file must be given together")
        return self


class HTTPConfig(_Strict):
    idle_conn_timeout: str = "1m30s"
    response_header_timeout: str = "2m"
    insecure_skip_verify: bool = False
    tls_handshake_timeout: str = "10s"
    expect_continue_timeout: str = "1s"
    max_idle_conns: int = 100
    max_idle_conns_per_host: int = 100
    max_conns_per_host: int = 0
    disable_compression: bool = False
    tls_config: TLSConfig = TLSConfig()
    transport: Any = None

    @field_validator("idle_conn_timeout", "response_header_timeout", "tls_handshake_timeout",
                     "expect_continue_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> str:
        parse_duration(value)
        return str(value)


class TraceConfig(_Strict):
    enable: bool = False


class SSEConfig(_Strict):
    type: Literal["", "SSE-S3", "SSE-KMS", "SSE-C"] = ""
    kms_key_id: str = ""
    kms_encryption_context: dict[str, str] = Field(default_factory=dict)
    encryption_key: str = ""

    @model_validator(mode="after")
    def _complete(self) -> SSEConfig:
        if self.type == "SSE-KMS" and not self.kms_key_id:
            raise ValueError("kms_key_id is required when type is SSE-KMS")
        if self.type == "SSE-C":
            if not self.encryption_key:
                raise ValueError("encryption_key (path to the key file) is required when type is SSE-C")
            try:
                size = len(Path(self.encryption_key).read_bytes())
            except OSError as exc:
                raise ValueError(f"encryption_key: cannot read {self.encryption_key}: {exc.strerror}") from None
            if size != 32:
                raise ValueError(f"encryption_key: an SSE-C key is 32 bytes, {self.encryption_key} has {size}")
        return self


class S3Config(_Strict):
    """The `config:` block of a Thanos `type: S3` objstore config (thanos-io/objstore providers/s3)."""

    bucket: str = Field(min_length=1)
    endpoint: str = Field(min_length=1)
    region: str = ""
    disable_dualstack: bool = False
    aws_sdk_auth: bool = False
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")
    session_token: SecretStr = SecretStr("")
    insecure: bool = False
    signature_version2: bool = False
    put_user_metadata: dict[str, str] = Field(default_factory=dict)
    http_config: HTTPConfig = HTTPConfig()
    trace: TraceConfig = TraceConfig()
    list_objects_version: Literal["", "v1", "v2"] = ""
    bucket_lookup_type: Literal["auto", "virtual-hosted", "path"] = "auto"
    send_content_md5: bool = True
    disable_multipart: bool = False
    part_size: int = 67108864
    sse_config: SSEConfig = SSEConfig()
    sts_endpoint: str = ""
    max_retries: int = 0

    @field_validator("endpoint")
    @classmethod
    def _no_scheme(cls, value: str) -> str:
        if "://" in value:
            raise ValueError("endpoint must be host[:port] without a scheme (use `insecure: true` for http)")
        if not _HOST.match(value) or (":" in value.rsplit("]", 1)[-1] and
                                      int(value.rsplit(":", 1)[1]) > 65535):
            raise ValueError(f"not a host[:port]: {value!r}")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value and not _REGION.match(value):
            raise ValueError(f"not a valid region name: {value!r}")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> S3Config:
        has_secret = bool(self.secret_key.get_secret_value())
        if bool(self.access_key) != has_secret:
            raise ValueError("access_key and secret_key must be given together")
        if self.aws_sdk_auth and self.access_key:
            raise ValueError("aws_sdk_auth and access_key are mutually exclusive")
        return self


class BucketConfig(_Strict):
    """A whole Thanos objstore config file."""

    type: str
    config: S3Config
    prefix: str = ""

    @field_validator("type")
    @classmethod
    def _s3_only(cls, value: str) -> str:
        if value.upper() != "S3":
            raise ValueError(f"only type S3 is supported, got {value!r}")
        return "S3"

    @field_validator("prefix")
    @classmethod
    def _trim_prefix(cls, value: str) -> str:
        return value.strip("/")


def load_bucket_config_file(path: Path) -> BucketConfig:
    """Read a Thanos objstore config file. Only the first YAML document counts, as in Thanos."""
    text = path.read_text()
    docs = list(yaml.safe_load_all(text))
    data = docs[0] if docs else None
    if not isinstance(data, dict):
        raise ValueError("not a Thanos objstore config (expected a mapping with type/config/prefix)")
    return BucketConfig.model_validate(data)


# minio-go s3utils.GetRegionFromURL: the endpoint forms that carry a region.
_REGION_PATTERNS = [
    re.compile(r"^s3[.-]dualstack\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$"),
    re.compile(r"^s3-fips\.dualstack\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$"),
    re.compile(r"^s3-fips\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$"),
    re.compile(r"^s3[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$"),
    re.compile(r"^(?:[a-z0-9-]+\.)*s3\.([a-z0-9-]+)\.vpce\.amazonaws\.com$"),
    re.compile(r"^(?:[a-z0-9-]+\.)*s3[.-]([a-z0-9-]+)\.amazonaws\.com$"),
]


def region_from_endpoint(endpoint: str) -> str:
    """The region an AWS S3 endpoint hostname names, or "" (then the client must call GetBucketLocation)."""
    host = endpoint.split(":", 1)[0].lower()
    if host in ("s3.amazonaws.com", "s3-external-1.amazonaws.com"):
        return ""
    for pattern in _REGION_PATTERNS:
        match = pattern.match(host)
        if match and match.group(1) not in ("external-1", "accelerate"):
            return match.group(1)
    return ""


def is_aws_endpoint(endpoint: str) -> bool:
    host = endpoint.split(":", 1)[0].lower()
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


def needs_bucket_location(cfg: S3Config) -> bool:
    """minio-go issues GetBucketLocation only when no region is configured and the endpoint names none."""
    return not cfg.region and not region_from_endpoint(cfg.endpoint)
