"""A small, faithful emulator of just the Kubernetes API endpoints the exporter uses.

Why: there is no apiserver in CI or in the demo, yet the exporter's Kubernetes
identity path (read a ServiceAccount's IRSA annotations, mint a bound token with
the TokenRequest API, hand it to STS) and its discovery path (list Deployments /
StatefulSets, read objstore Secrets) must be exercised through the official
``kubernetes`` client, including 401/403/404 behaviour. The emulator speaks the
real JSON shapes, authenticates bearer tokens (static ones and its own
ServiceAccount tokens), authorises with RBAC-like rules, and issues real RS256
ServiceAccount tokens whose issuer discovery (``/.well-known/openid-configuration``,
``/openid/v1/jwks`` with ``x5c``) an STS such as Ceph RGW can validate.

Deliberately out of scope: watch, patch/update/delete over HTTP, pagination,
set-based label selectors, admission, Pods (so no pod-bound TokenRequests).
The discovery endpoints and ``/version`` are public (as when
``system:service-account-issuer-discovery`` is bound to unauthenticated users).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import ipaddress
import json
import logging
import re
import shutil
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.demo.sa_token_issuer import ServiceAccountTokenIssuer, new_rsa_key, self_signed_cert

__all__ = ["EXPORTER_RULES", "RESOURCES", "KubeApiEmulator", "RequestRecord", "Rule"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# (API group, plural) -> (kind, apiVersion, namespaced): only what the exporter reads.
RESOURCES: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("", "namespaces"): ("Namespace", "v1", False),
    ("", "serviceaccounts"): ("ServiceAccount", "v1", True),
    ("", "secrets"): ("Secret", "v1", True),
    ("apps", "deployments"): ("Deployment", "apps/v1", True),
    ("apps", "statefulsets"): ("StatefulSet", "apps/v1", True),
}
_KEY_BY_KIND = {kind: key for key, (kind, _, _) in RESOURCES.items()}
_GROUP_BY_PLURAL = {plural: group for group, plural in RESOURCES}
_PUBLIC_PATHS = frozenset({"/version", "/.well-known/openid-configuration", "/openid/v1/jwks"})
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_MIN_TOKEN_SECONDS, _MAX_TOKEN_SECONDS = 600, 1 << 32


@dataclass(frozen=True)
class _Attrs:
    """Request attributes, as the RBAC authorizer sees them."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule bound to a subject (user or group name).

    ``namespace=None`` models a ClusterRoleBinding (every namespace and the cluster
    scope); a namespace models a RoleBinding there. ``resources`` may name a
    subresource (``serviceaccounts/token``), ``*`` or ``*/token``, like RBAC.
    """

    verbs: Sequence[str]
    resources: Sequence[str]
    api_groups: Sequence[str] = ("",)
    namespace: str | None = None
    resource_names: Sequence[str] = ()

    def allows(self, a: _Attrs) -> bool:
        if self.namespace is not None and self.namespace != a.namespace:
            return False
        if not ({a.verb, "*"} & set(self.verbs) and {a.group, "*"} & set(self.api_groups)):
            return False
        full = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        wanted = {full, "*"} | ({f"*/{a.subresource}"} if a.subresource else set())
        if not wanted & set(self.resources):
            return False
        return not self.resource_names or a.name in self.resource_names


# What the exporter needs cluster-wide (a ClusterRole it would ship with).
EXPORTER_RULES: tuple[Rule, ...] = (
    Rule(verbs=("get",), resources=("serviceaccounts", "secrets")),
    Rule(verbs=("create",), resources=("serviceaccounts/token",)),
    Rule(verbs=("get", "list"), resources=("deployments", "statefulsets"), api_groups=("apps",)),
    Rule(verbs=("get", "list"), resources=("namespaces",)),
)


@dataclass(frozen=True)
class RequestRecord:
    """One served request (never the token): lets tests assert what the exporter called."""

    method: str
    path: str
    user: str
    status: int


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(group: str, resource: str, name: str) -> Obj:
    d: Obj = {"name": name} if name else {}
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def _not_found(group: str, resource: str, name: str) -> _ApiError:
    return _ApiError(
        404, "NotFound", f'{_qualified(group, resource)} "{name}" not found', _details(group, resource, name)
    )


def _unknown_path() -> _ApiError:
    return _ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _forbidden(user: str, a: _Attrs) -> _ApiError:
    what = _qualified(a.group, a.resource) + (f' "{a.name}"' if a.name else "")
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    msg = f'{what} is forbidden: User "{user}" cannot {a.verb} resource "{res}" in API group "{a.group}" {scope}'
    return _ApiError(403, "Forbidden", msg, _details(a.group, a.resource, a.name))


def _meta(
    name: str, namespace: str, labels: Mapping[str, str] | None, annotations: Mapping[str, str] | None = None
) -> Obj:
    """ObjectMeta without empty maps, as the apiserver serialises it (omitempty)."""
    meta: Obj = {"name": name, "namespace": namespace} if namespace else {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SELECTOR_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _parse_selector(text: str) -> list[tuple[str, str, str]]:
    """Equality-based selectors (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``) → (key, op, value)."""
    if "(" in text:
        raise _ApiError(
            400,
            "BadRequest",
            f"unable to parse requirement: set-based selector {text!r} is not supported by this emulator",
        )
    reqs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        for op in ("!=", "==", "="):
            if op in part:
                key, value = (s.strip() for s in part.split(op, 1))
                reqs.append((key, "!=" if op == "!=" else "=", value))
                break
        else:
            reqs.append((part[1:].strip(), "!", "") if part.startswith("!") else (part, "exists", ""))
    for key, _, _ in reqs:
        if not _SELECTOR_KEY.match(key):
            raise _ApiError(400, "BadRequest", f"unable to parse requirement: invalid label key {key!r}")
    return reqs


def _matches(labels: Mapping[str, str], reqs: list[tuple[str, str, str]]) -> bool:
    for key, op, value in reqs:
        ok = {"=": labels.get(key) == value, "!=": labels.get(key) != value, "exists": key in labels}.get(
            op, key not in labels
        )
        if not ok:
            return False
    return True


class _Server(ThreadingHTTPServer):
    """Tracks live connections so ``stop()`` really cuts keep-alive clients off."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: KubeApiEmulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator
        self.conns: set[Any] = set()
        self.conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.conns_lock:
            conns, self.conns = list(self.conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like urllib3 expects from a real apiserver
    server_version = "kube-apiserver-emulator"
    timeout = 30

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emu = self.server.emulator
        code, payload, user = emu.handle(self.command, self.path, self.headers.get("Authorization"), body)
        emu.record(RequestRecord(self.command, self.path, user, code))  # before replying: no race with the client
        data = json.dumps(payload).encode()
        self.send_response(code)
        ctype = "application/jwk-set+json" if self.path == "/openid/v1/jwks" else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kube-emulator: " + format, *args)


class KubeApiEmulator:
    """In-memory apiserver on loopback; seed it with the ``add_*``/``put`` methods, then point a client at ``url``.

    ``issuer`` defaults to ``url`` (so an STS on this host can fetch discovery);
    ``api_audiences`` default to the issuer; ``max_token_expiration`` models
    ``--service-account-max-token-expiration``; ``tls=True`` serves HTTPS with a
    self-signed cert at ``ca_cert_path`` (needed for in-cluster-style config).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        issuer: str | None = None,
        api_audiences: Sequence[str] | None = None,
        jwks_uri: str | None = None,
        max_token_expiration: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        tls: bool = False,
        version: str = "v1.31.0",
    ) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], Obj] = {}  # (group, plural, namespace, name)
        self._tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._rules: dict[str, list[Rule]] = {}
        self._rv = 0
        self._requests: list[RequestRecord] = []
        self._thread: threading.Thread | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="kube-emulator-"))
        self.max_token_expiration = max_token_expiration
        self.version = version
        self._server = _Server((host, port), self)
        self.ca_cert_path: Path | None = None
        if tls:
            self.ca_cert_path = self._enable_tls(host)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self._server.server_address[1]}"
        self.issuer = ServiceAccountTokenIssuer(
            issuer or self.url,
            api_audiences=api_audiences,
            key=signing_key,
            jwks_uri=jwks_uri or f"{self.url}/openid/v1/jwks",
        )

    def _enable_tls(self, host: str) -> Path:
        key = new_rsa_key()
        cert = self_signed_cert(
            key, "kube-apiserver", [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
        )
        cert_path, key_path = self._tmp / "ca.crt", self._tmp / "apiserver.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        return cert_path

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> KubeApiEmulator:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api-emulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop keep-alive connections, free the port and temp files. Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.close_connections()
        self._server.server_close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> KubeApiEmulator:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- seeding ---------------------------------------------------------------------------

    def put(self, obj: Mapping[str, Any]) -> Obj:
        """Create or replace an object from a manifest dict (e.g. a rendered kube-thanos document).

        The server fields are filled like the apiserver does: uid and creationTimestamp are
        kept across replacements, resourceVersion is bumped, Secret ``stringData`` is folded
        into base64 ``data``. Objects in a missing namespace create it (a convenience).
        """
        key = _KEY_BY_KIND.get(str(obj.get("kind")))
        if key is None:
            raise ValueError(f"kind {obj.get('kind')!r} is not emulated (only {sorted(_KEY_BY_KIND)})")
        kind, api_version, namespaced = RESOURCES[key]
        new = copy.deepcopy(dict(obj))
        new["apiVersion"] = api_version
        meta = new.setdefault("metadata", {})
        name = meta["name"]
        if not namespaced:
            meta.pop("namespace", None)
        ns: str = meta.setdefault("namespace", "default") if namespaced else ""
        if kind == "Secret":
            data = new.setdefault("data", {})
            for k, v in (new.pop("stringData", None) or {}).items():
                data[k] = base64.b64encode(v.encode()).decode()
            new.setdefault("type", "Opaque")
        elif kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            new.setdefault("spec", {"finalizers": ["kubernetes"]})
            new.setdefault("status", {"phase": "Active"})
        with self._lock:
            if namespaced and ("", "namespaces", "", ns) not in self._objects:
                self.add_namespace(ns)
            old = self._objects.get((*key, ns, name))
            self._rv += 1
            meta["uid"] = old["metadata"]["uid"] if old else meta.get("uid") or str(uuid.uuid4())
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else _now()
            meta["resourceVersion"] = str(self._rv)
            if kind in ("Deployment", "StatefulSet"):
                meta["generation"] = old["metadata"].get("generation", 1) + 1 if old else 1
                if not new.get("status"):  # no controllers here: report the rollout as done and healthy
                    n = new.get("spec", {}).get("replicas", 1)
                    new["status"] = {"observedGeneration": meta["generation"], "replicas": n, "readyReplicas": n,
                                     "availableReplicas": n, "updatedReplicas": n}
                    if kind == "StatefulSet":
                        new["status"]["currentReplicas"] = n
            self._objects[(*key, ns, name)] = new
            return copy.deepcopy(new)

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> Obj:
        return self.put({"kind": "Namespace", "metadata": _meta(name, "", labels)})

    def add_service_account(
        self,
        namespace: str,
        name: str,
        *,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Obj:
        return self.put({"kind": "ServiceAccount", "metadata": _meta(name, namespace, labels, annotations)})

    def add_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str | bytes],
        *,
        type: str = "Opaque",
        labels: Mapping[str, str] | None = None,
    ) -> Obj:
        encoded = {k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()}
        return self.put(
            {
                "kind": "Secret",
                "type": type,
                "data": encoded,
                "metadata": _meta(name, namespace, labels),
            }
        )

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str],
        containers: Sequence[Mapping[str, Any]],
        service_account_name: str | None = None,
        volumes: Sequence[Mapping[str, Any]] = (),
        replicas: int = 1,
    ) -> Obj:
        """``labels`` go on the object, the selector and the pod template; containers/volumes are raw specs."""
        return self.put(
            self._workload("Deployment", namespace, name, labels, containers, service_account_name, volumes, replicas)
        )

    def add_statefulset(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str],
        containers: Sequence[Mapping[str, Any]],
        service_account_name: str | None = None,
        volumes: Sequence[Mapping[str, Any]] = (),
        replicas: int = 1,
    ) -> Obj:
        obj = self._workload(
            "StatefulSet", namespace, name, labels, containers, service_account_name, volumes, replicas
        )
        obj["spec"]["serviceName"] = name
        return self.put(obj)

    @staticmethod
    def _workload(
        kind: str,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        containers: Sequence[Mapping[str, Any]],
        sa: str | None,
        volumes: Sequence[Mapping[str, Any]],
        replicas: int,
    ) -> Obj:
        pod_spec: Obj = {"containers": [dict(c) for c in containers]}
        if sa:
            pod_spec["serviceAccountName"] = sa
        if volumes:
            pod_spec["volumes"] = [dict(v) for v in volumes]
        return {
            "kind": kind,
            "metadata": _meta(name, namespace, labels),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(labels)},
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
            },
        }

    def annotate(self, resource: str, namespace: str, name: str, annotations: Mapping[str, str | None]) -> Obj:
        """Set (or, with ``None``, remove) annotations, e.g. to drop ``eks.amazonaws.com/role-arn`` mid-test."""
        with self._lock:
            obj = self.get(resource, namespace, name)
            if obj is None:
                raise KeyError(f"{resource} {namespace}/{name}")
            ann = obj["metadata"].setdefault("annotations", {})
            for k, v in annotations.items():
                if v is None:
                    ann.pop(k, None)
                else:
                    ann[k] = v
            return self.put(obj)

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        """A copy of the stored object (``resource`` is the plural, e.g. ``deployments``)."""
        with self._lock:
            obj = self._objects.get((_GROUP_BY_PLURAL[resource], resource, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def delete(self, resource: str, namespace: str, name: str) -> bool:
        with self._lock:
            return self._objects.pop((_GROUP_BY_PLURAL[resource], resource, namespace, name), None) is not None

    # ---- authentication / authorization ------------------------------------------------------

    def add_token(self, token: str, user: str, groups: Sequence[str] = ()) -> None:
        """A static bearer token (like ``--token-auth-file``) for ``user``; ``system:masters`` bypasses RBAC."""
        with self._lock:
            self._tokens[token] = (user, (*groups, "system:authenticated"))

    def grant(self, subject: str, *rules: Rule) -> None:
        """Bind rules to a user or group name (e.g. ``system:serviceaccounts:monitoring``)."""
        with self._lock:
            self._rules.setdefault(subject, []).extend(rules)

    def revoke(self, subject: str) -> None:
        with self._lock:
            self._rules.pop(subject, None)

    def mint_token(
        self,
        namespace: str,
        name: str,
        *,
        audiences: Sequence[str] | None = None,
        expiration_seconds: int = 3600,
        now: float | None = None,
    ) -> str:
        """A token for an existing ServiceAccount, bypassing the API (tests: wrong audience, expired, …)."""
        sa = self.get("serviceaccounts", namespace, name)
        if sa is None:
            raise KeyError(f"serviceaccount {namespace}/{name}")
        return self.issuer.mint(
            namespace, name, sa["metadata"]["uid"], audiences=audiences, expiration_seconds=expiration_seconds, now=now
        )[0]

    @property
    def issuer_url(self) -> str:
        return self.issuer.issuer

    def oidc_thumbprint(self) -> str:
        """SHA-1 hex of the JWKS ``x5c`` cert, for CreateOpenIDConnectProvider's ThumbprintList."""
        return self.issuer.thumbprint_sha1()

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self._requests.append(rec)

    # ---- client helpers ----------------------------------------------------------------------

    def client_configuration(self, token: str) -> Any:
        """A ``kubernetes.client.Configuration`` for this emulator and bearer token."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        if self.ca_cert_path is not None:
            cfg.ssl_ca_cert = str(self.ca_cert_path)
        return cfg

    def write_kubeconfig(
        self,
        path: str | Path,
        token: str,
        *,
        namespace: str = "default",
        user: str = "emulator-user",
        context: str = "kube-emulator",
    ) -> Path:
        """Write a kubeconfig (JSON is valid YAML) for ``kubernetes.config.load_kube_config``; mode 0600."""
        cluster: Obj = {"server": self.url}
        if self.ca_cert_path is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_cert_path.read_bytes()).decode()
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": user, "namespace": namespace}}],
        }
        out = Path(path)
        out.touch(mode=0o600)
        out.write_text(json.dumps(doc, indent=2))
        return out

    # ---- request handling --------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, authorization: str | None, body: bytes) -> tuple[int, Obj, str]:
        """Serve one request: authenticate (401), route (404), authorize (403), then act. Returns (code, body, user)."""
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        user = "system:anonymous"
        try:
            user, groups = self._authenticate(authorization, path)
            if path in _PUBLIC_PATHS:
                if method != "GET":
                    raise _ApiError(405, "MethodNotAllowed", "the server does not allow this method", {})
                return 200, self._public(path), user
            attrs = self._route(method, path, query)
            self._authorize(user, groups, attrs)
            with self._lock:
                code, obj = self._serve(attrs, query, body)
            return code, obj, user
        except _ApiError as err:
            return err.code, err.status(), user

    def _authenticate(self, authorization: str | None, path: str) -> tuple[str, tuple[str, ...]]:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            if path in _PUBLIC_PATHS:
                return "system:anonymous", ("system:unauthenticated",)
            raise _ApiError(401, "Unauthorized", "Unauthorized")
        with self._lock:
            if token in self._tokens:
                return self._tokens[token]
        try:
            claims = self.issuer.verify(token)
        except jwt.PyJWTError:
            raise _ApiError(401, "Unauthorized", "Unauthorized") from None
        kube = claims.get("kubernetes.io") or {}
        ns, sa_ref = kube.get("namespace", ""), kube.get("serviceaccount") or {}
        sa = self.get("serviceaccounts", ns, sa_ref.get("name", ""))
        if sa is None or sa["metadata"]["uid"] != sa_ref.get("uid"):  # deleted/recreated SA: token is dead
            raise _ApiError(401, "Unauthorized", "Unauthorized")
        return str(claims["sub"]), ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated")

    def _public(self, path: str) -> Obj:
        if path == "/version":
            major, minor = self.version.lstrip("v").split(".")[:2]
            return {
                "major": major,
                "minor": minor,
                "gitVersion": self.version,
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2024-08-13T07:28:49Z",
                "goVersion": "go1.22.5",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        return self.issuer.discovery_document() if path.startswith("/.well-known") else self.issuer.jwks()

    def _route(self, method: str, path: str, query: Mapping[str, str]) -> _Attrs:
        segs = [unquote(s) for s in path.strip("/").split("/")]
        if segs[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], f"{segs[1]}/{segs[2]}", segs[3:]
        else:
            raise _unknown_path()
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        spec = RESOURCES.get((group, rest[0])) if 1 <= len(rest) <= 3 else None
        if spec is None or spec[1] != version or (ns and not spec[2]):
            raise _unknown_path()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if (name and spec[2] and not ns) or (sub and (rest[0], sub) != ("serviceaccounts", "token")):
            raise _unknown_path()
        if method == "GET":
            verb = "get" if name else ("watch" if query.get("watch") in ("1", "true") else "list")
        else:
            verb = _VERBS.get(method, method.lower())
        return _Attrs(verb, group, rest[0], sub, ns, name)

    def _authorize(self, user: str, groups: tuple[str, ...], attrs: _Attrs) -> None:
        if "system:masters" in groups:
            return
        with self._lock:
            rules = [r for s in (user, *groups) for r in self._rules.get(s, ())]
        if not any(r.allows(attrs) for r in rules):
            raise _forbidden(user, attrs)

    def _serve(self, a: _Attrs, query: Mapping[str, str], body: bytes) -> tuple[int, Obj]:
        kind, api_version, _ = RESOURCES[(a.group, a.resource)]
        if a.verb == "create" and a.subresource == "token":
            return 201, self._token_request(a, body)
        if a.verb == "get":
            obj = self._objects.get((a.group, a.resource, a.namespace, a.name))
            if obj is None:
                raise _not_found(a.group, a.resource, a.name)
            return 200, copy.deepcopy(obj)
        if a.verb == "list":
            labels = _parse_selector(query.get("labelSelector", ""))
            fields = _parse_selector(query.get("fieldSelector", ""))
            for key, _, _ in fields:
                if key not in ("metadata.name", "metadata.namespace"):
                    raise _ApiError(400, "BadRequest", f"field label not supported: {key}")
            items = []
            for (g, r, ns, _name), obj in sorted(self._objects.items()):
                meta = obj["metadata"]
                if (
                    (g, r) == (a.group, a.resource)
                    and (not a.namespace or ns == a.namespace)
                    and _matches(meta.get("labels") or {}, labels)
                    and _matches({"metadata.name": meta["name"], "metadata.namespace": ns}, fields)
                ):
                    items.append({k: copy.deepcopy(v) for k, v in obj.items() if k not in ("kind", "apiVersion")})
            return 200, {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }
        raise _ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})

    def _token_request(self, a: _Attrs, body: bytes) -> Obj:
        sa = self._objects.get(("", "serviceaccounts", a.namespace, a.name))
        if sa is None:
            raise _not_found("", "serviceaccounts", a.name)
        try:
            req = json.loads(body or b"{}")
            spec = req.get("spec") or {}
            audiences = list(spec.get("audiences") or self.issuer.api_audiences)
            seconds = int(spec["expirationSeconds"]) if spec.get("expirationSeconds") is not None else 3600
        except (ValueError, TypeError, AttributeError) as err:
            raise _ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {err}") from None
        problem = (
            "may not specify a duration less than 10 minutes"
            if seconds < _MIN_TOKEN_SECONDS
            else "may not specify a duration larger than 2^32 seconds"
            if seconds > _MAX_TOKEN_SECONDS
            else ""
        )
        if problem:
            msg = f"Invalid value: {seconds}: {problem}"
            raise _ApiError(
                422,
                "Invalid",
                f'TokenRequest.authentication.k8s.io "{a.name}" is invalid: spec.expirationSeconds: {msg}',
                {
                    "name": a.name,
                    "group": "authentication.k8s.io",
                    "kind": "TokenRequest",
                    "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": "spec.expirationSeconds"}],
                },
            )
        ref = spec.get("boundObjectRef")
        if ref:  # Pods, Secrets and Nodes are not emulated, so every binding target is missing.
            raise _not_found("", f"{str(ref.get('kind', '')).lower()}s", str(ref.get("name", "")))
        if self.max_token_expiration and seconds > self.max_token_expiration:
            seconds = self.max_token_expiration
        token, exp = self.issuer.mint(
            a.namespace, a.name, sa["metadata"]["uid"], audiences=audiences, expiration_seconds=seconds
        )
        expires = dt.datetime.fromtimestamp(exp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": a.name, "namespace": a.namespace, "creationTimestamp": None},
            "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": None},
            "status": {"token": token, "expirationTimestamp": expires},
        }
