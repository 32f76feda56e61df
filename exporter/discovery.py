"""Kubernetes discovery: find the Thanos workloads in some namespaces and build one target per identity x bucket.

For every Deployment and StatefulSet in the configured namespaces, each container is read like Thanos reads its
command line: the subcommand (`compact`, `store`, `sidecar`, `receive`, `rule`, `tools bucket web`) gives the
component, falling back to the kube-thanos (`app.kubernetes.io/name: thanos-compact`, ...) or Bitnami
(`app.kubernetes.io/name: thanos` + `app.kubernetes.io/component: compactor`, ...) labels for containers whose
args name no subcommand. The bucket is the objstore config of `--objstore.config-file=<path>` (the Secret volume
mounted at that path, and the key inside it) or `--objstore.config=<yaml>`, usually `$(OBJSTORE_CONFIG)` from an
env var's `secretKeyRef`, read through the API. The identity is the pod template's ServiceAccount
(`serviceAccountName`, else `default`): a `thanos-sidecar` container in a Prometheus StatefulSet therefore probes
as Prometheus's ServiceAccount, which is what it really runs as. An objstore config with static keys
(`access_key`) is probed with those keys (`objstore_config`), as Thanos would.

Ignored: query, query-frontend and every container without an objstore flag (e.g. receive routers). Workloads
that share ServiceAccount, component and bucket (store shards, receive hashrings) become one target.

Failures never propagate: a namespace that cannot be listed, or a workload whose Secret cannot be read, keeps
what the last successful refresh found for it, and the problem is logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import posixpath
import re
import shlex
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml
from pydantic import SecretStr, ValidationError

from exporter.config import KubernetesDiscovery, KubernetesSettings, ObjstoreConfigIdentity
from exporter.kubeclient import api_client
from exporter.objstore import BucketConfig, needs_bucket_location
from exporter.profiles import Component, required_operations
from exporter.targets import Target

log = logging.getLogger(__name__)
Obj = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
# kube-thanos: app.kubernetes.io/name -> component (None: a Thanos component without bucket access)
KUBE_THANOS_NAMES: dict[str, Component | None] = {
    "thanos-compact": Component.COMPACTOR,
    "thanos-store": Component.STORE,
    "thanos-receive": Component.RECEIVE,
    "thanos-rule": Component.RULE,
    "thanos-bucket": Component.BUCKET_WEB,
    "thanos-sidecar": Component.SIDECAR,
    "thanos-query": None,
    "thanos-query-frontend": None,
}
# Bitnami chart: app.kubernetes.io/name=thanos, app.kubernetes.io/component -> component
BITNAMI_COMPONENTS: dict[str, Component | None] = {
    "compactor": Component.COMPACTOR,
    "storegateway": Component.STORE,
    "receive": Component.RECEIVE,
    "ruler": Component.RULE,
    "bucketweb": Component.BUCKET_WEB,
    "query": None,
    "query-frontend": None,
    "receive-distributor": None,
}
# Thanos subcommands -> component (None: known, but no bucket access)
SUBCOMMANDS: dict[tuple[str, ...], Component | None] = {
    ("compact",): Component.COMPACTOR,
    ("store",): Component.STORE,
    ("sidecar",): Component.SIDECAR,
    ("receive",): Component.RECEIVE,
    ("rule",): Component.RULE,
    ("tools", "bucket", "web"): Component.BUCKET_WEB,
    ("bucket", "web"): Component.BUCKET_WEB,  # before v0.15
    ("query",): None,
    ("query-frontend",): None,
}
_THANOS_COMMANDS = {words[0] for words in SUBCOMMANDS}
_SHELLS = {"sh", "bash", "ash", "dash", "busybox"}
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")


class Skip(Exception):
    """The container does not probe a bucket (not Thanos, no objstore flag, unsupported type): not an error."""


class Unresolved(Exception):
    """Something needed could not be read or understood: log it and keep what the last refresh found."""


class ClusterReader(Protocol):
    def workloads(self, namespace: str) -> list[tuple[str, Obj]]:
        """(kind, object) for every Deployment and StatefulSet in the namespace; raises on API errors."""

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        """The Secret's base64 `data`; raises on API errors."""


class KubernetesClusterReader:
    """Reads through the official client: list Deployments/StatefulSets, get Secrets. Connects lazily."""

    def __init__(self, settings: KubernetesSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self._apis: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _clients(self) -> tuple[Any, Any]:
        with self._lock:
            if self._apis is None:
                from kubernetes import client

                api = api_client(self.settings)
                self._apis = (client.AppsV1Api(api), client.CoreV1Api(api))
            return self._apis

    @staticmethod
    def _json(response: Any) -> Obj:
        data: Obj = json.loads(response.data)
        return data

    def workloads(self, namespace: str) -> list[tuple[str, Obj]]:
        apps, _ = self._clients()
        kw = {"_request_timeout": self.timeout, "_preload_content": False}
        out = [("Deployment", d) for d in self._json(apps.list_namespaced_deployment(namespace, **kw))["items"]]
        out += [("StatefulSet", s) for s in self._json(apps.list_namespaced_stateful_set(namespace, **kw))["items"]]
        return out

    def secret(self, namespace: str, name: str) -> dict[str, str]:
        _, core = self._clients()
        obj = self._json(core.read_namespaced_secret(
            name, namespace, _request_timeout=self.timeout, _preload_content=False))
        return dict(obj.get("data") or {})


def _api_problem(exc: Exception, what: str) -> Unresolved:
    status = getattr(exc, "status", None)
    if status in (401, 403):
        return Unresolved(f"{what}: forbidden for the exporter (HTTP {status}); see docs/discovery.md for the RBAC")
    if status == 404:
        return Unresolved(f"{what}: not found")
    if status:
        return Unresolved(f"{what}: HTTP {status}")
    return Unresolved(f"{what}: {type(exc).__name__}")


# ---- reading a container's command line ---------------------------------------------------------------------


def argv(container: Obj) -> list[str]:
    """command + args, unwrapping `sh -c "thanos ..."`."""
    words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
    if words and posixpath.basename(words[0]) in _SHELLS and "-c" in words[1:]:
        i = words.index("-c", 1)
        try:
            return shlex.split(words[i + 1]) if i + 1 < len(words) else []
        except ValueError:
            return []
    return words


def subcommand(words: list[str]) -> tuple[str, ...]:
    """The leading positional words after the `thanos` binary (and an `exec`), e.g. ("tools", "bucket", "web")."""
    i = 0
    while i < len(words) and (words[i] == "exec" or posixpath.basename(words[i]) == "thanos"):
        i += 1
    out = []
    for word in words[i:]:
        if word.startswith("-"):
            break
        out.append(word)
    return tuple(out)


def component_from_args(words: list[str]) -> tuple[bool, Component | None]:
    """(is a Thanos subcommand, its component). Longest match, so `tools bucket web` beats nothing."""
    sub = subcommand(words)
    for n in (3, 2, 1):
        if len(sub) >= n and sub[:n] in SUBCOMMANDS:
            return True, SUBCOMMANDS[sub[:n]]
    return (bool(sub) and sub[0] in _THANOS_COMMANDS), None


def component_from_labels(labels: dict[str, str]) -> tuple[bool, Component | None]:
    """(labelled as Thanos, its component) from kube-thanos or Bitnami labels."""
    name = labels.get(NAME_LABEL, "")
    if name in KUBE_THANOS_NAMES:
        return True, KUBE_THANOS_NAMES[name]
    if name == "thanos" and labels.get(COMPONENT_LABEL, "") in BITNAMI_COMPONENTS:
        return True, BITNAMI_COMPONENTS[labels[COMPONENT_LABEL]]
    return False, None


def flag(words: list[str], name: str) -> str | None:
    """The value of `--name=value` or `--name value` (the last one wins, as with kingpin)."""
    value = None
    for i, word in enumerate(words):
        if word == f"--{name}" and i + 1 < len(words):
            value = words[i + 1]
        elif word.startswith(f"--{name}="):
            value = word.split("=", 1)[1]
    return value


# ---- resolving the objstore config --------------------------------------------------------------------------


class _Secrets:
    """Secret reads within one refresh: each Secret is fetched at most once."""

    def __init__(self, reader: ClusterReader, namespace: str) -> None:
        self.reader = reader
        self.namespace = namespace
        self._cache: dict[str, dict[str, str] | Unresolved] = {}

    def value(self, name: str, key: str) -> str:
        if name not in self._cache:
            try:
                self._cache[name] = self.reader.secret(self.namespace, name)
            except Exception as exc:
                self._cache[name] = _api_problem(exc, f"reading Secret {self.namespace}/{name}")
        data = self._cache[name]
        if isinstance(data, Unresolved):
            raise data
        if key not in data:
            raise Unresolved(f"Secret {self.namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(data[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unresolved(f"Secret {self.namespace}/{name} key {key!r} is not base64 UTF-8 text") from None


def _env_value(container: Obj, var: str, secrets: _Secrets) -> tuple[str, str] | None:
    """(value, where) of the container's environment variable, like the kubelet builds it; None if undefined."""
    for env in reversed(container.get("env") or []):
        if env.get("name") != var:
            continue
        if "value" in env or "valueFrom" not in env:
            return str(env.get("value") or ""), f"env {var}"
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if not ref:
            raise Unresolved(f"env {var} comes from {sorted(env['valueFrom'])}: only secretKeyRef is supported")
        return secrets.value(ref["name"], ref["key"]), f"Secret {secrets.namespace}/{ref['name']} key {ref['key']}"
    for source in container.get("envFrom") or []:
        ref = source.get("secretRef")
        prefix = source.get("prefix") or ""
        if ref and var.startswith(prefix):
            try:
                return secrets.value(ref["name"], var[len(prefix):]), \
                    f"Secret {secrets.namespace}/{ref['name']} key {var[len(prefix):]}"
            except Unresolved:
                continue
    return None


def expand(text: str, container: Obj, secrets: _Secrets) -> tuple[str, list[str]]:
    """Kubelet `$(VAR)` expansion of an argument (`$$` escapes); returns the text and where values came from."""
    where: list[str] = []

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        found = _env_value(container, match.group(1), secrets)
        if found is None:
            raise Unresolved(f"$({match.group(1)}) is not defined in the container's environment")
        where.append(found[1])
        return found[0]

    return _VAR_REF.sub(sub, text), where


def _file_sources(path: str, container: Obj, pod: Obj) -> list[tuple[str, str]]:
    """(Secret, key) candidates for a file path inside the container, from its volume mounts."""
    best: Obj | None = None
    for mount in container.get("volumeMounts") or []:
        base = str(mount.get("mountPath", "")).rstrip("/")
        if (path == base or path.startswith(base + "/")) and (
                best is None or len(base) > len(str(best["mountPath"]).rstrip("/"))):
            best = mount
    if best is None:
        raise Unresolved(f"no volume is mounted at {path}")
    if best.get("subPathExpr"):
        raise Unresolved(f"volume {best['name']} uses subPathExpr, which discovery does not resolve")
    rel = path[len(str(best["mountPath"]).rstrip("/")):].strip("/")
    inner = posixpath.normpath(posixpath.join(str(best.get("subPath") or ""), rel)).strip("/")
    volume = next((v for v in pod.get("volumes") or [] if v.get("name") == best["name"]), None)
    if volume is None:
        raise Unresolved(f"volume {best['name']} is mounted but not defined")
    if "secret" in volume:
        refs = [(str(volume["secret"].get("secretName", "")), volume["secret"].get("items"))]
    elif "projected" in volume:
        refs = [(str(s["secret"].get("name", "")), s["secret"].get("items"))
                for s in (volume["projected"].get("sources") or []) if "secret" in s]
    else:
        kinds = sorted(k for k in volume if k != "name")
        raise Unresolved(f"volume {best['name']} is {'/'.join(kinds) or 'empty'}, not a Secret")
    out = []
    for secret, items in refs:
        if items:
            out += [(secret, str(it["key"])) for it in items if posixpath.normpath(str(it.get("path"))) == inner]
        elif inner and "/" not in inner:
            out.append((secret, inner))
    if not out:
        raise Unresolved(f"no Secret key of volume {best['name']} is mounted at {path}")
    return out


def parse_objstore(text: str, where: str) -> BucketConfig:
    """A Thanos objstore config (first YAML document), S3 only."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        raise Unresolved(f"{where}: invalid YAML") from None
    data = docs[0] if docs else None
    if not isinstance(data, dict):
        raise Unresolved(f"{where}: not a Thanos objstore config")
    if str(data.get("type", "")).upper() != "S3":
        raise Skip(f"{where}: objstore type {data.get('type')!r} is not S3")
    try:
        return BucketConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise Unresolved(f"{where}: {loc}: {first['msg']}") from None


def objstore_of(words: list[str], container: Obj, pod: Obj, secrets: _Secrets) -> tuple[BucketConfig, str]:
    """The bucket a Thanos container uses, and a description of where its config came from."""
    path = flag(words, "objstore.config-file")
    content = flag(words, "objstore.config")
    if path:
        path, _ = expand(path, container, secrets)
        errors = []
        for secret, key in _file_sources(posixpath.normpath(path), container, pod):
            try:
                where = f"Secret {secrets.namespace}/{secret} key {key}"
                return parse_objstore(secrets.value(secret, key), where), where
            except Unresolved as exc:
                errors.append(str(exc))
        raise Unresolved("; ".join(errors))
    if content:
        text, origins = expand(content, container, secrets)
        desc = ", ".join(origins) or "--objstore.config"
        return parse_objstore(text, desc), desc
    raise Skip("no --objstore.config-file or --objstore.config flag")


# ---- workloads -> targets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One container of one workload that uses a bucket."""

    namespace: str
    kind: str
    workload: str
    container: str
    component: Component
    service_account: str
    bucket: BucketConfig
    source: str


def find_in_workload(kind: str, obj: Obj, secrets: _Secrets) -> list[Found]:
    """Every bucket-using Thanos container of one workload; raises Unresolved if one cannot be read."""
    meta = obj.get("metadata") or {}
    template = (obj.get("spec") or {}).get("template") or {}
    labels = {**(meta.get("labels") or {}), **((template.get("metadata") or {}).get("labels") or {})}
    pod = template.get("spec") or {}
    labelled, label_component = component_from_labels(labels)
    service_account = str(pod.get("serviceAccountName") or pod.get("serviceAccount") or "default")
    found, problems = [], []
    for container in pod.get("containers") or []:
        words = argv(container)
        is_thanos, component = component_from_args(words)
        if not is_thanos and labelled:
            component = label_component
        if component is None:
            continue  # not Thanos, or a component without bucket access (query, query-frontend)
        try:
            bucket, source = objstore_of(words, container, pod, secrets)
        except Skip as why:
            log.debug("discovery: skipping %s %s/%s container %s: %s", kind, secrets.namespace, meta.get("name"),
                      container.get("name"), why)
            continue
        except Unresolved as exc:
            problems.append(f"container {container.get('name')}: {exc}")
            continue
        found.append(Found(secrets.namespace, kind, str(meta.get("name")), str(container.get("name")), component,
                           service_account, bucket, source))
    if problems:
        raise Unresolved("; ".join(problems))
    return found


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    return value


def bucket_key(bucket: BucketConfig) -> str:
    """Identifies a bucket config (secrets included, hashed) for grouping."""
    text = json.dumps(_reveal(bucket.model_dump()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def group_name(workloads: list[str]) -> str:
    """One workload: its name. Several (shards, hashrings): their common name, cut at a `-` boundary."""
    names = sorted(set(workloads))
    if len(names) == 1:
        return names[0]
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    if prefix not in names:
        prefix = prefix[:prefix.rfind("-")] if "-" in prefix else ""
    prefix = prefix.rstrip("-._")
    return prefix if len(prefix) >= 3 else names[0]


def build_discovered_targets(found: list[Found], settings: KubernetesDiscovery,
                             taken: Collection[str] = ()) -> list[Target]:
    """Group containers sharing namespace, ServiceAccount, component and bucket; one target per group."""
    groups: dict[tuple[str, str, Component, str], list[Found]] = {}
    for f in found:
        groups.setdefault((f.namespace, f.service_account, f.component, bucket_key(f.bucket)), []).append(f)
    used = set(taken)
    targets = []
    for (namespace, service_account, component, _), members in sorted(groups.items(), key=lambda kv: kv[0][:3]):
        workloads = sorted({m.workload for m in members})
        name = f"{namespace}/{group_name(workloads)}"
        if name in used:
            name = f"{namespace}/{workloads[0]}-{component.value}"
        if name in used or not _TARGET_NAME.match(name):
            log.warning("discovery: cannot name a target for %s in %s (name %r taken or invalid); skipped",
                        ", ".join(workloads), namespace, name)
            continue
        used.add(name)
        bucket = members[0].bucket
        override = settings.profiles.get(component)
        identity = ObjstoreConfigIdentity() if bucket.config.access_key else settings.identity
        targets.append(Target(
            name=name,
            component=component,
            namespace=namespace,
            service_account=service_account,
            bucket_name=members[0].source,
            bucket=bucket,
            identity=identity,
            required=required_operations(
                component,
                frozenset(override.add) if override else frozenset(),
                frozenset(override.remove) if override else frozenset(),
                needs_bucket_location(bucket.config)),
        ))
        if len(workloads) > 1:
            log.debug("discovery: %s covers %s (same ServiceAccount, component and bucket)", name,
                      ", ".join(workloads))
    return targets


@dataclass
class Discoverer:
    """Finds targets; remembers, per namespace and per workload, what the last successful read found."""

    settings: KubernetesDiscovery
    reader: ClusterReader
    _last: dict[str, dict[tuple[str, str], list[Found]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def discover(self, taken: Collection[str] = ()) -> list[Target]:
        """One refresh. Never raises: problems are logged (and kept in `problems`), last good results reused."""
        self.problems = []
        found: list[Found] = []
        for namespace in self.settings.namespaces:
            previous = self._last.get(namespace, {})
            try:
                workloads = self.reader.workloads(namespace)
            except Exception as exc:
                self._problem(str(_api_problem(exc, f"listing Deployments/StatefulSets in {namespace}"))
                              + (" (keeping the last discovered targets)" if previous else ""))
                found += [f for fs in previous.values() for f in fs]
                continue
            secrets = _Secrets(self.reader, namespace)
            current: dict[tuple[str, str], list[Found]] = {}
            for kind, obj in workloads:
                key = (kind, str((obj.get("metadata") or {}).get("name")))
                try:
                    current[key] = find_in_workload(kind, obj, secrets)
                except Unresolved as exc:
                    kept = key in previous
                    self._problem(f"{kind} {namespace}/{key[1]}: {exc}"
                                  + (" (keeping its last discovered targets)" if kept else ""))
                    if kept:
                        current[key] = previous[key]
                except Exception:
                    log.exception("discovery: unexpected error reading %s %s/%s", kind, namespace, key[1])
                    if key in previous:
                        current[key] = previous[key]
            self._last[namespace] = current
            found += [f for fs in current.values() for f in fs]
        return build_discovered_targets(found, self.settings, taken)

    def _problem(self, message: str) -> None:
        self.problems.append(message)
        log.warning("discovery: %s", message)
