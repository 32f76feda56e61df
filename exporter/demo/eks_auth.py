"""A small, faithful emulator of the EKS Auth API, for tests and demos only (never part of the exporter).

There is no EKS Auth service on loopback, yet the exporter's EKS Pod Identity path
(``eks-auth:AssumeRoleForPodIdentity``) must run over real HTTP through botocore. This emulator serves the
one operation that path calls, with the shapes of botocore's ``eks-auth`` service model (rest-json):

``POST /clusters/{clusterName}/assume-role-for-pod-identity`` with body ``{"token": "<JWT>"}`` →
``200 {"subject", "audience", "podIdentityAssociation", "assumedRoleUser", "credentials"}``.

What it checks, in order (each failure answers the error botocore parses: ``X-Amzn-ErrorType`` header plus a
JSON body ``{"__type", "message"}``):

1. a SigV4 ``Authorization`` header for service ``eks-auth`` (``MissingAuthenticationTokenException``, 403).
   With ``callers`` (access key → secret key) the key must be known (``UnrecognizedClientException``, 403)
   and the signature must verify (``InvalidSignatureException``, 403); with ``authorized`` only those keys
   may call the API (``AccessDeniedException``, 400 as in the model). Like the Pod Identity Agent, the
   caller signs with the node's credentials.
2. the cluster exists (``ResourceNotFoundException``, 404) and the body has a token
   (``InvalidParameterException``, 400).
3. the token: RS256 signature against the cluster issuer's JWKS, fetched over HTTP through its OIDC
   discovery document; ``iss``; ``aud`` must be ``pods.eks.amazonaws.com``; ``exp``/``nbf``
   (``ExpiredTokenException`` / ``InvalidTokenException``, 400).
4. a Pod Identity association for (cluster, namespace, service account) (``ResourceNotFoundException``).
5. credentials: ``sts:AssumeRole`` of the association's role on the backing STS (moto or Ceph RGW) with the
   emulator's own keys, standing in for the ``pods.eks.amazonaws.com`` service principal. A refusal there is
   ``AccessDeniedException``; anything else ``InternalServerException`` (500).

Not modelled: session tags and ``sts:TagSession`` (off by default, see ``session_tags``), the
``eks-auth:AssumeRoleForPodIdentity`` IAM permission beyond ``authorized``, throttling, and whether AWS
insists on a *pod-bound* token (it is not checked here; the emulated kube API cannot bind tokens to pods).
Tokens and credentials are never logged; :meth:`EksAuthEmulator.issued_secrets` hands the issued secrets
to tests that must prove they appear nowhere else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import logging
import re
import threading
import urllib.request
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.session
import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

__all__ = ["POD_IDENTITY_AUDIENCE", "Association", "EksAuthEmulator", "EksAuthRecord"]

log = logging.getLogger(__name__)

POD_IDENTITY_AUDIENCE = "pods.eks.amazonaws.com"
_PATH = re.compile(r"^/clusters/([^/]+)/assume-role-for-pod-identity$")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Association:
    """One Pod Identity association: a ServiceAccount of a cluster mapped onto an IAM role."""

    cluster: str
    namespace: str
    service_account: str
    role_arn: str
    association_id: str

    @property
    def arn(self) -> str:
        return f"arn:aws:eks:us-east-1:{_ACCOUNT}:podidentityassociation/{self.cluster}/{self.association_id}"


@dataclass(frozen=True)
class EksAuthRecord:
    """One served request (never the token or credentials)."""

    method: str
    path: str
    access_key_id: str
    status: int
    error: str


class _Error(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: EksAuthEmulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "eks-auth-emulator"
    timeout = 30

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.server.emulator.handle(self.command, self.path, headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("eks-auth-emulator: " + format, *args)


class EksAuthEmulator:
    """EKS Auth on loopback; ``url`` is what the exporter's ``eks_auth_endpoint`` points at.

    ``clusters`` maps cluster names to their ServiceAccount issuer URL (the kube API emulator's
    ``issuer_url``); ``sts_url`` and ``sts_keys`` are the backing STS and the keys the emulator assumes
    roles with; ``callers``/``authorized`` restrict who may call (see the module docstring).
    """

    def __init__(
        self,
        clusters: Mapping[str, str],
        sts_url: str,
        sts_keys: tuple[str, str],
        *,
        region: str = "us-east-1",
        callers: Mapping[str, str] | None = None,
        authorized: Collection[str] | None = None,
        duration_seconds: int = 3600,
        session_tags: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 10.0,
    ) -> None:
        self.clusters = {name: issuer.rstrip("/") for name, issuer in clusters.items()}
        self.region = region
        self.callers = dict(callers) if callers is not None else None
        self.authorized = set(authorized) if authorized is not None else None
        self.duration_seconds = duration_seconds
        self.session_tags = session_tags
        self.timeout = timeout
        self._lock = threading.Lock()
        self._associations: dict[tuple[str, str, str], Association] = {}
        self._records: list[EksAuthRecord] = []
        self._issued: list[tuple[str, str, str]] = []
        self._sts = botocore.session.get_session().create_client(
            "sts", endpoint_url=sts_url, region_name=region, aws_access_key_id=sts_keys[0],
            aws_secret_access_key=sts_keys[1],
            config=BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=timeout,
                              read_timeout=timeout))
        self._server = _Server((host, port), self)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> EksAuthEmulator:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="eks-auth-emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port. Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> EksAuthEmulator:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- seeding and inspection --------------------------------------------------------------

    def add_association(self, cluster: str, namespace: str, service_account: str, role_arn: str) -> Association:
        """Like ``eks:CreatePodIdentityAssociation``; replaces an existing one for the same ServiceAccount."""
        if cluster not in self.clusters:
            raise KeyError(f"unknown cluster {cluster!r}")
        assoc = Association(cluster, namespace, service_account, role_arn, f"a-{uuid.uuid4().hex[:17]}")
        with self._lock:
            self._associations[(cluster, namespace, service_account)] = assoc
        return assoc

    def remove_association(self, cluster: str, namespace: str, service_account: str) -> bool:
        with self._lock:
            return self._associations.pop((cluster, namespace, service_account), None) is not None

    @property
    def requests(self) -> list[EksAuthRecord]:
        with self._lock:
            return list(self._records)

    def issued_secrets(self) -> list[str]:
        """Every access key id, secret key and session token handed out (for leak tests; never log them)."""
        with self._lock:
            return [s for creds in self._issued for s in creds]

    # ---- request handling --------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Serve one request; returns (status, JSON body, extra headers). ``headers`` have lower-case names."""
        path = urlsplit(raw_path).path
        claimed = _AUTH.match(headers.get("authorization", "").strip())
        key = claimed.group("key") if claimed else ""  # recorded even when authentication fails
        try:
            match = _PATH.match(path)
            if method != "POST" or match is None:
                raise _Error(404, "UnknownOperationException", f"no operation {method} {path}")
            self._authenticate(method, raw_path, headers, body)
            status, payload = 200, self._assume(unquote(match.group(1)), body)
            error = ""
        except _Error as err:
            status, error = err.status, err.code
            payload = {"__type": err.code, "message": err.message}
        with self._lock:
            self._records.append(EksAuthRecord(method, path, key, status, error))
        return status, payload, ({"X-Amzn-ErrorType": error} if error else {})

    def _authenticate(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> None:
        auth = _AUTH.match(headers.get("authorization", "").strip())
        if auth is None or "x-amz-date" not in headers:
            raise _Error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        key = auth.group("key")
        if auth.group("service") != "eks-auth" or auth.group("region") != self.region:
            raise _Error(403, "InvalidSignatureException",
                         f"Credential should be scoped to a valid region and to service eks-auth, "
                         f"not {auth.group('region')}/{auth.group('service')}")
        if self.callers is not None:
            secret = self.callers.get(key)
            if secret is None:
                raise _Error(403, "UnrecognizedClientException", "The security token included in the request is "
                                                                 "invalid.")
            if not hmac.compare_digest(self._signature(method, raw_path, headers, body, key, secret, auth),
                                       auth.group("signature")):
                raise _Error(403, "InvalidSignatureException", "The request signature we calculated does not "
                                                               "match the signature you provided.")
        if self.authorized is not None and key not in self.authorized:
            raise _Error(400, "AccessDeniedException", f"caller {key} is not authorized to perform: "
                                                       "eks-auth:AssumeRoleForPodIdentity")

    def _signature(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes, key: str, secret: str,
        auth: re.Match[str],
    ) -> str:
        """Recompute the SigV4 signature over exactly the headers the client signed."""
        signed = auth.group("signed").split(";")
        if "host" not in signed or any(h not in headers for h in signed):
            return ""
        request = AWSRequest(method=method, url=f"http://{headers['host']}{raw_path}", data=body,
                             headers={h: headers[h] for h in signed})
        request.context["timestamp"] = headers["x-amz-date"]
        signer = SigV4Auth(BotoCredentials(key, secret, headers.get("x-amz-security-token")),
                           auth.group("service"), auth.group("region"))
        canonical = signer.canonical_request(request)
        return str(signer.signature(signer.string_to_sign(request, canonical), request))

    def _assume(self, cluster: str, body: bytes) -> dict[str, Any]:
        issuer = self.clusters.get(cluster)
        if issuer is None:
            raise _Error(404, "ResourceNotFoundException", f"No cluster found for name: {cluster}.")
        try:
            token = json.loads(body or b"{}").get("token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise _Error(400, "InvalidParameterException", "token is required")
        claims = self._validate(token, issuer)
        kube = claims.get("kubernetes.io") or {}
        namespace = str(kube.get("namespace") or "")
        service_account = str((kube.get("serviceaccount") or {}).get("name") or "")
        with self._lock:
            assoc = self._associations.get((cluster, namespace, service_account))
        if assoc is None:
            raise _Error(404, "ResourceNotFoundException",
                         f"No Pod Identity Association found for service account {namespace}/{service_account} "
                         f"in cluster {cluster}")
        pod = str((kube.get("pod") or {}).get("name") or service_account)
        session = f"eks-{cluster}-{pod}-{uuid.uuid4()}"[:64]
        kwargs: dict[str, Any] = {"RoleArn": assoc.role_arn, "RoleSessionName": session,
                                  "DurationSeconds": self.duration_seconds}
        if self.session_tags:
            kwargs["Tags"] = [{"Key": "eks-cluster-name", "Value": cluster},
                              {"Key": "kubernetes-namespace", "Value": namespace},
                              {"Key": "kubernetes-service-account", "Value": service_account}]
        try:
            answer = self._sts.assume_role(**kwargs)
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = str(exc.response.get("Error", {}).get("Code") or status)
            if status in (401, 403) or code == "AccessDenied":
                raise _Error(400, "AccessDeniedException",
                             f"Failed to assume role {assoc.role_arn}: {code}") from None
            raise _Error(500, "InternalServerException", f"STS AssumeRole failed: {code}") from None
        except Exception as exc:
            raise _Error(500, "InternalServerException", f"STS AssumeRole failed: {type(exc).__name__}") from None
        c, user = answer["Credentials"], answer.get("AssumedRoleUser") or {}
        with self._lock:
            self._issued.append((c["AccessKeyId"], c["SecretAccessKey"], c.get("SessionToken") or ""))
        expiration: dt.datetime = c["Expiration"]
        return {
            "subject": {"namespace": namespace, "serviceAccount": service_account},
            "audience": POD_IDENTITY_AUDIENCE,
            "podIdentityAssociation": {"associationArn": assoc.arn, "associationId": assoc.association_id},
            "assumedRoleUser": {"arn": str(user.get("Arn") or ""), "assumeRoleId": str(user.get("AssumedRoleId")
                                                                                      or "")},
            "credentials": {"sessionToken": c.get("SessionToken") or "", "secretAccessKey": c["SecretAccessKey"],
                            "accessKeyId": c["AccessKeyId"], "expiration": int(expiration.timestamp())},
        }

    def _validate(self, token: str, issuer: str) -> dict[str, Any]:
        """The ServiceAccount token, checked against the cluster issuer's JWKS (fetched over HTTP)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise _Error(400, "InvalidTokenException", "The token is not a valid JWT") from None
        keys = self._jwks(issuer)
        jwk = next((k for k in keys if k.get("kid") == kid), None)
        if jwk is None:
            raise _Error(400, "InvalidTokenException", "The token was not signed by the cluster's issuer")
        try:
            public = jwt.PyJWK(jwk, algorithm="RS256").key
            claims: dict[str, Any] = jwt.decode(
                token, public, algorithms=["RS256"], audience=POD_IDENTITY_AUDIENCE, issuer=issuer,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]})
        except jwt.ExpiredSignatureError:
            raise _Error(400, "ExpiredTokenException", "The token is expired") from None
        except jwt.InvalidAudienceError:
            raise _Error(400, "InvalidTokenException",
                         f"The token's audience is not {POD_IDENTITY_AUDIENCE}") from None
        except jwt.PyJWTError as exc:
            raise _Error(400, "InvalidTokenException", f"The token is invalid: {type(exc).__name__}") from None
        return claims

    def _jwks(self, issuer: str) -> list[dict[str, Any]]:
        try:
            discovery = self._get_json(f"{issuer}/.well-known/openid-configuration")
            keys = self._get_json(str(discovery["jwks_uri"])).get("keys") or []
        except (OSError, ValueError, KeyError) as exc:
            raise _Error(500, "InternalServerException", f"cannot fetch the issuer's JWKS: {exc}") from None
        return [k for k in keys if isinstance(k, dict)]

    def _get_json(self, url: str) -> dict[str, Any]:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url}")
        with contextlib.closing(urllib.request.urlopen(url, timeout=self.timeout)) as answer:
            data = json.loads(answer.read())
        if not isinstance(data, dict):
            raise ValueError(f"{url}: not a JSON object")
        return data
