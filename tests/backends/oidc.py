"""A minimal OpenID Connect issuer on loopback, for AssumeRoleWithWebIdentity against a real STS (RGW).

It serves ``/.well-known/openid-configuration`` and a JWKS whose key carries an ``x5c`` self-signed
certificate (RGW verifies the token with that certificate and checks its SHA-1 ``thumbprint`` against the
registered OIDC provider), and mints RS256 JWTs like a Kubernetes service-account token.

Usage::

    with FakeOIDCIssuer() as idp:
        provider_arn = rgw.create_oidc_provider(idp.issuer, ["sts.amazonaws.com"], [idp.thumbprint])
        token = idp.mint("system:serviceaccount:thanos:store", audience="sts.amazonaws.com")
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SigningKey:
    """An RSA key with a self-signed certificate, as published in a JWKS entry."""

    def __init__(self, common_name: str = "fake-oidc") -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.private_key, hashes.SHA256())
        )
        self.kid = uuid.uuid4().hex

    @property
    def thumbprint(self) -> str:
        """SHA-1 of the certificate's DER encoding, lowercase hex (what CreateOpenIDConnectProvider wants)."""
        return hashlib.sha1(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        der = self.cert.public_bytes(serialization.Encoding.DER)
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e),
                "x5c": [base64.b64encode(der).decode()]}


class FakeOIDCIssuer:
    """OIDC discovery + JWKS over http on ``127.0.0.1:<free port>``; mints tokens with :meth:`mint`."""

    def __init__(self) -> None:
        self.key = SigningKey()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._docs: dict[str, bytes] = {}
        #: Paths requested so far (to assert that the STS really fetched discovery/JWKS).
        self.requests: list[str] = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("issuer not started")
        return int(self._server.server_address[1])

    @property
    def issuer(self) -> str:
        """The ``iss`` claim and provider URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """The issuer without scheme: the OIDC provider ARN suffix and the trust-condition key prefix
        (``"<host>:sub"``, ``"<host>:aud"``)."""
        return f"127.0.0.1:{self.port}"

    @property
    def thumbprint(self) -> str:
        return self.key.thumbprint

    def _documents(self) -> dict[str, bytes]:
        discovery = {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/keys",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        return {
            "/.well-known/openid-configuration": json.dumps(discovery).encode(),
            "/keys": json.dumps({"keys": [self.key.jwk()]}).encode(),
        }

    def start(self) -> Self:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                body = issuer._docs.get(self.path.split("?", 1)[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._docs = self._documents()  # needs the port
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-oidc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def mint(
        self,
        subject: str,
        *,
        audience: str = "sts.amazonaws.com",
        expires_in: int = 600,
        issuer: str | None = None,
        key: SigningKey | None = None,
        **claims: Any,
    ) -> str:
        """An RS256 JWT (``iss``, ``sub``, ``aud``, ``iat``, ``nbf``, ``exp``, plus ``claims``). Pass a
        negative ``expires_in`` for an expired token or a foreign ``key`` for a bad signature."""
        now = int(time.time())
        signer = key or self.key
        payload = {"iss": issuer or self.issuer, "sub": subject, "aud": audience,
                   "iat": now, "nbf": now - 5, "exp": now + expires_in, **claims}
        return jwt.encode(payload, signer.private_key, algorithm="RS256", headers={"kid": signer.kid})
