"""A real ServiceAccount token issuer for the demo Kubernetes API emulator.

Why it exists: IRSA-style probes hand a *bound ServiceAccount token* to an STS
(moto, Ceph RGW) which validates it against the issuer's OIDC discovery document
and JWKS. To test that path faithfully we need the same artefacts a cluster
publishes: RS256 JWTs with the kube claims, a JWKS whose ``kid`` matches the
token header, and (unlike a real cluster, but needed by RGW) an ``x5c``
certificate whose SHA-1 thumbprint is registered with the OIDC provider.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["ServiceAccountTokenIssuer", "new_rsa_key", "self_signed_cert"]


def new_rsa_key() -> rsa.RSAPrivateKey:
    """2048-bit RSA, the size kubeadm uses for ``sa.key``."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed_cert(
    key: rsa.RSAPrivateKey, common_name: str, san: Sequence[x509.GeneralName] = ()
) -> x509.Certificate:
    """A one-year self-signed cert (backdated an hour so clock skew never makes it 'not yet valid')."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(key, hashes.SHA256())


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ServiceAccountTokenIssuer:
    """Signs and verifies bound ServiceAccount tokens the way kube-apiserver does.

    ``issuer`` is the ``iss`` claim and the base of the discovery URLs;
    ``api_audiences`` is what ``--api-audiences`` defaults to (the issuer) and is
    used when a TokenRequest names no audience. Pass ``key`` to share a key, or
    build a second issuer with the same URL to sign with a *foreign* key in tests.
    """

    def __init__(
        self,
        issuer: str,
        *,
        api_audiences: Sequence[str] | None = None,
        key: rsa.RSAPrivateKey | None = None,
        jwks_uri: str | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.api_audiences = list(api_audiences) if api_audiences else [self.issuer]
        self.jwks_uri = jwks_uri or f"{self.issuer}/openid/v1/jwks"
        self._key = key or new_rsa_key()
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Same derivation as kube-apiserver (keyIDFromPublicKey): base64url(sha256(PKIX DER)).
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        self._cert = self_signed_cert(self._key, "service-account-issuer")

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def thumbprint_sha1(self) -> str:
        """Lower-case SHA-1 hex of the JWKS ``x5c`` cert, as registered with CreateOpenIDConnectProvider."""
        return self._cert.fingerprint(hashes.SHA1()).hex()  # IAM thumbprints are SHA-1 by definition

    def jwks(self) -> dict[str, Any]:
        """The ``/openid/v1/jwks`` document (plus ``x5c``, which real clusters omit)."""
        numbers = self._key.public_key().public_numbers()
        x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        key = {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [x5c],
        }
        return {"keys": [key]}

    def discovery_document(self) -> dict[str, Any]:
        """The ``/.well-known/openid-configuration`` document, field for field as kube-apiserver serves it."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def mint(
        self,
        namespace: str,
        name: str,
        uid: str,
        *,
        audiences: Sequence[str] | None = None,
        expiration_seconds: int = 3600,
        now: float | None = None,
        pod: tuple[str, str] | None = None,
        extra_claims: dict[str, Any] | None = None,
    ) -> tuple[str, int]:
        """Sign a token for ``system:serviceaccount:<namespace>:<name>``; returns (token, exp).

        ``now`` lets tests mint already-expired or not-yet-valid tokens; ``pod`` is
        (name, uid) for a pod-bound token; ``extra_claims`` overrides anything.
        """
        iat = int(time.time() if now is None else now)
        kube: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if pod is not None:
            kube["pod"] = {"name": pod[0], "uid": pod[1]}
        claims: dict[str, Any] = {
            "aud": list(audiences) if audiences else list(self.api_audiences),
            "exp": iat + expiration_seconds,
            "iat": iat,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": kube,
            "nbf": iat,
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        claims.update(extra_claims or {})
        # kube-apiserver's header is exactly {"alg","kid"}: drop PyJWT's default "typ".
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": None})
        return token, int(claims["exp"])

    def verify(self, token: str, audiences: Sequence[str] | None = None) -> dict[str, Any]:
        """Validate signature, ``iss``, ``exp``/``nbf`` and that ``aud`` meets ``audiences``.

        Raises ``jwt.PyJWTError`` on any failure. Used by the emulator to authenticate
        its own tokens, like the apiserver's service-account authenticator.
        """
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["RS256"],
            audience=list(audiences) if audiences else self.api_audiences,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "iss", "sub", "aud"]},
        )
        return claims
