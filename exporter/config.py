"""The exporter's configuration file, validated in full before anything is probed.

Every problem becomes one line naming the field (`targets[2].identity.role_arn: field required`), so a bad
deploy fails fast with exit 2 instead of probing with half a config.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter.durations import format_duration, parse_duration
from exporter.objstore import BucketConfig, load_bucket_config_file
from exporter.profiles import Component, Operation

Duration = Annotated[float, BeforeValidator(parse_duration)]

# Label values must stay bounded and readable: `monitoring/thanos-compact`.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_ARN = re.compile(r"^arn:[a-z-]+:(iam|sts)::[0-9]*:[A-Za-z-]+/.+$")


class ConfigError(Exception):
    """A configuration problem; `lines` are one-line messages, each naming a field."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """A secret read from an environment variable or a file (or, for demos, given inline)."""

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if sum(x is not None for x in (self.env, self.file, self.value)) != 1:
            raise ValueError("give exactly one of env, file or value")
        # present now, so a typo fails the config check instead of every refresh (contents are read later)
        if self.env is not None and self.env not in os.environ:
            raise ValueError(f"environment variable {self.env} is not set")
        if self.file is not None and not self.file.is_file():
            raise ValueError(f"file {self.file} does not exist")
        return self

    def read(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        if self.file is not None:
            return self.file.read_text().strip()
        assert self.value is not None
        return self.value.get_secret_value()


class DefaultIdentity(_Model):
    """The exporter's own AWS credential chain (env, shared files, web identity, container/instance roles)."""

    source: Literal["default"] = "default"
    profile: str | None = None


class ObjstoreConfigIdentity(_Model):
    """Exactly what Thanos does with the bucket config: its access_key/secret_key, else the default chain."""

    source: Literal["objstore_config"] = "objstore_config"


class StaticIdentity(_Model):
    """Fixed keys, e.g. one MinIO or Ceph user per component."""

    source: Literal["static"] = "static"
    access_key_id: SecretRef
    secret_access_key: SecretRef
    session_token: SecretRef | None = None


class InstanceMetadataIdentity(_Model):
    """The node's role from EC2 instance metadata (IMDSv2) only: what a pod without IRSA really runs as.

    Use it as `node_identity` when the exporter itself has IRSA or Pod Identity credentials, which the
    `default` chain would pick first.
    """

    source: Literal["instance_metadata"] = "instance_metadata"
    endpoint: str | None = None
    timeout: Duration = 2.0
    attempts: int = Field(2, ge=1, le=5)


BaseIdentity = Annotated[
    StaticIdentity | DefaultIdentity | ObjstoreConfigIdentity | InstanceMetadataIdentity,
    Field(discriminator="source"),
]


class _STSSettings(_Model):
    role_arn: str
    session_name: str = Field("objstore-permission-exporter", pattern=r"^[\w+=,.@-]{2,64}$")
    duration: Duration = 3600.0
    sts_endpoint: str | None = None
    sts_region: str | None = None

    @field_validator("role_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not value.startswith("arn:"):
            raise ValueError(f"not an ARN: {value!r}")
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: float) -> float:
        if not 900 <= value <= 43200:
            raise ValueError("must be between 15m and 12h (the STS limits)")
        return value


class AssumeRoleIdentity(_STSSettings):
    """sts:AssumeRole into the component's role, from base credentials (the exporter's chain by default)."""

    source: Literal["assume_role"] = "assume_role"
    external_id: SecretRef | None = None
    base: BaseIdentity = DefaultIdentity()


class WebIdentityIdentity(_STSSettings):
    """sts:AssumeRoleWithWebIdentity with a token file, as IRSA does inside a pod."""

    source: Literal["web_identity"] = "web_identity"
    token_file: Path


class KubernetesIdentity(_Model):
    """The target's Kubernetes ServiceAccount, exactly as its pods authenticate.

    `irsa`: role from the `eks.amazonaws.com/role-arn` annotation, a TokenRequest token, then
    sts:AssumeRoleWithWebIdentity. `pod_identity`: a token for `pods.eks.amazonaws.com`, then
    eks-auth:AssumeRoleForPodIdentity for `cluster_name`. Without a role annotation the identity fails with
    `no_role_annotation`; with `fallback: node` (the exporter's own chain, i.e. the node role when it runs on
    the same nodes) or `fallback: anonymous` the operations are probed as what the pod would really get.
    """

    source: Literal["kubernetes"] = "kubernetes"
    mode: Literal["irsa", "pod_identity"] = "irsa"
    audience: str | None = None
    token_expiration: Duration = 3600.0
    session_name: str = Field("objstore-permission-exporter", pattern=r"^[\w+=,.@-]{2,64}$")
    sts_endpoint: str | None = None
    sts_region: str | None = None
    cluster_name: str | None = None
    eks_auth_endpoint: str | None = None
    fallback: Literal["none", "node", "anonymous"] = "none"
    node_identity: BaseIdentity = DefaultIdentity()

    @field_validator("token_expiration")
    @classmethod
    def _expiration(cls, value: float) -> float:
        if not 600 <= value <= 86400:
            raise ValueError("must be between 10m and 24h (the TokenRequest limits)")
        return value

    @model_validator(mode="after")
    def _pod_identity(self) -> KubernetesIdentity:
        if self.mode == "pod_identity" and not self.cluster_name:
            raise ValueError("cluster_name is required when mode is pod_identity")
        return self


Identity = Annotated[
    StaticIdentity | DefaultIdentity | ObjstoreConfigIdentity | InstanceMetadataIdentity | AssumeRoleIdentity
    | WebIdentityIdentity | KubernetesIdentity,
    Field(discriminator="source"),
]
IDENTITY_SOURCES = ("static", "default", "objstore_config", "instance_metadata", "assume_role", "web_identity",
                    "kubernetes")


class JanitorSettings(_Model):
    """The identity that keeps the canary present and removes what targets could not; scoped to the probe dir."""

    identity: Identity = DefaultIdentity()
    leftover_age: Duration = 3600.0


class KubernetesSettings(_Model):
    """How the exporter reaches the Kubernetes API: in-cluster when running in a pod, else a kubeconfig."""

    kubeconfig: Path | None = None
    context: str | None = None


class GlobalSettings(_Model):
    interval: Duration = 60.0
    timeout: Duration = 10.0
    jitter: Duration | None = None  # default: 5s, or a tenth of the interval when that is shorter
    concurrency: int = Field(16, ge=1, le=1024)
    probe_dir: str = "objstore-permission-probe"
    credentials_refresh_margin: Duration = 300.0
    resolve_principal: bool = True
    janitor: JanitorSettings = JanitorSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()

    @property
    def probe_jitter(self) -> float:
        return self.jitter if self.jitter is not None else min(5.0, self.interval / 10)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 300:
            raise ValueError("must be greater than 0s and at most 5m")
        return value

    @field_validator("probe_dir")
    @classmethod
    def _probe_dir(cls, value: str) -> str:
        value = value.strip("/")
        parts = value.split("/")
        if not value or any(p in ("", ".", "..") for p in parts):
            raise ValueError("must be a non-empty relative path without '.' or '..' segments")
        if len(parts[0]) == 26 and parts[0][0] <= "7":
            # Thanos's IsBlockDir parses ULIDs non-strictly: any 26-character name starting with a byte <= '7'
            raise ValueError("must not look like a block ULID (26 characters starting with 0-7): Thanos would "
                             "treat it as a block")
        if parts[0] in ("debug", "chunks", "index", "meta.json"):
            raise ValueError(f"{parts[0]!r} is a name Thanos uses; choose a dedicated directory")
        return value

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval")
        if value is not None and interval is not None and value >= interval:
            raise ValueError(f"must be shorter than interval ({format_duration(interval)})")
        return value


class BucketRef(_Model):
    """A bucket as a Thanos objstore config: inline (`objstore:`) or the file Thanos itself reads."""

    objstore_config_file: Path | None = None
    objstore: BucketConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _load_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("objstore_config_file") is not None:
            if data.get("objstore") is not None:
                raise ValueError("give either objstore or objstore_config_file, not both")
            path = Path(str(data["objstore_config_file"]))
            try:
                loaded = load_bucket_config_file(path)
            except OSError as exc:
                raise ValueError(f"objstore_config_file: cannot read {path}: {exc.strerror}") from None
            except yaml.YAMLError as exc:
                raise ValueError(f"objstore_config_file {path}: invalid YAML: {_yaml_problem(exc)}") from None
            except ValidationError as exc:
                problem = format_validation_error(exc)[0]
                raise ValueError(f"objstore_config_file {path}: {problem}") from None
            return {**data, "objstore": loaded}
        return data

    @model_validator(mode="after")
    def _present(self) -> BucketRef:
        if self.objstore is None:
            raise ValueError("give objstore (inline Thanos objstore config) or objstore_config_file")
        return self

    @property
    def config(self) -> BucketConfig:
        assert self.objstore is not None
        return self.objstore


class ProfileOverride(_Model):
    add: list[Operation] = Field(default_factory=list)
    remove: list[Operation] = Field(default_factory=list)


class KubernetesDiscovery(_Model):
    """Find Thanos workloads in these namespaces and probe each one as its own ServiceAccount (off by default).

    Deployments and StatefulSets are recognised by kube-thanos and Bitnami labels and by the Thanos subcommand in
    their container args (a Prometheus pod's `thanos-sidecar` included); the bucket is the objstore config their
    `--objstore.config-file` / `--objstore.config` flag points at, read from its Secret. See docs/discovery.md.
    """

    enabled: bool = False
    namespaces: list[str] = Field(default_factory=list)
    refresh_interval: Duration = 300.0
    identity: KubernetesIdentity = KubernetesIdentity()
    profiles: dict[Component, ProfileOverride] = Field(default_factory=dict)

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for ns in value:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", ns):
                raise ValueError(f"not a namespace name: {ns!r}")
        return list(dict.fromkeys(value))

    @field_validator("refresh_interval")
    @classmethod
    def _refresh(cls, value: float) -> float:
        if value < 10:
            raise ValueError("must be at least 10s")
        return value

    @model_validator(mode="after")
    def _enabled_needs_namespaces(self) -> KubernetesDiscovery:
        if self.enabled and not self.namespaces:
            raise ValueError("namespaces: list at least one namespace when discovery is enabled")
        return self


class DiscoverySettings(_Model):
    kubernetes: KubernetesDiscovery = KubernetesDiscovery()


class TargetConfig(_Model):
    """One component identity probing one bucket."""

    name: str
    component: Component
    namespace: str = ""
    service_account: str = ""
    identity: Identity
    bucket: str
    profile: ProfileOverride = ProfileOverride()
    expected_principal: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-128 characters of letters, digits and _ . : / - (a label value)")
        return value

    @model_validator(mode="after")
    def _service_account(self) -> TargetConfig:
        if isinstance(self.identity, KubernetesIdentity) and not (self.namespace and self.service_account):
            raise ValueError("namespace and service_account are required with identity source kubernetes")
        return self

    @field_validator("expected_principal")
    @classmethod
    def _principal(cls, value: str | None) -> str | None:
        if value is not None and not _ARN.match(value):
            raise ValueError(f"not an IAM role/user or STS ARN: {value!r}")
        return value


class Config(_Model):
    global_: GlobalSettings = Field(default_factory=GlobalSettings, alias="global")
    buckets: dict[str, BucketRef] = Field(default_factory=dict)
    targets: list[TargetConfig] = Field(default_factory=list)
    discovery: DiscoverySettings = DiscoverySettings()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _references(self) -> Config:
        if not self.targets and not self.discovery.kubernetes.enabled:
            raise ValueError("targets: list at least one target, or enable discovery.kubernetes")
        seen: set[str] = set()
        for i, target in enumerate(self.targets):
            if target.name in seen:
                raise ValueError(f"targets[{i}].name: duplicate target name {target.name!r}")
            seen.add(target.name)
            if target.bucket not in self.buckets:
                known = ", ".join(sorted(self.buckets)) or "none"
                raise ValueError(f"targets[{i}].bucket: unknown bucket {target.bucket!r} (known: {known})")
        return self


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"line {mark.line + 1} column {mark.column + 1}: {problem}"
    return str(problem)


def _render_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    prev: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif prev in ("identity", "base", "node_identity") and part in IDENTITY_SOURCES:
            pass  # pydantic puts the union's tag in the path; the user never wrote it
        elif part == "global_":
            out += ("." if out else "") + "global"
        else:
            out += ("." if out else "") + str(part)
        prev = part
    return out


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: `<field path>: <message>`."""
    lines = []
    for err in exc.errors():
        loc = _render_loc(tuple(err["loc"]))
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown source {err.get('ctx', {}).get('tag')!r} (expected one of: {', '.join(IDENTITY_SOURCES)})"
        elif err["type"] == "union_tag_not_found":
            msg = f"source is required (one of: {', '.join(IDENTITY_SOURCES)})"
        # model-level checks name their own field path in the message
        lines.append(f"{loc}: {msg}" if loc and not msg.startswith("targets[") else msg)
    return lines


def parse_config(data: object) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(["config: expected a mapping with global, buckets and targets"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def load_config(path: Path) -> Config:
    """Read and validate the config file; raise ConfigError with one line per problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"config.file: cannot read {path}: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"config.file: invalid YAML: {_yaml_problem(exc)}"]) from None
    return parse_config(data)
