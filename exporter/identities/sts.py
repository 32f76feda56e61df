"""STS calls shared by the sources, with failures classified the way the contract names them."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from exporter.credentials import Credentials
from exporter.identities.base import IdentityError
from exporter.reasons import Reason, classify


def credentials_from_sts(answer: dict[str, Any]) -> Credentials:
    c = answer["Credentials"]
    return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c.get("SessionToken"), c.get("Expiration"))


def assumed_arn(answer: dict[str, Any]) -> str:
    return str((answer.get("AssumedRoleUser") or {}).get("Arn") or "")


def assume_error(exc: Exception, what: str) -> IdentityError:
    """Classify an AssumeRole* failure. RGW answers without a parsable code: fall back to the HTTP status."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
                    # the same failures from rest-json services such as EKS Auth (signed with the node's keys)
                    "UnrecognizedClientException", "InvalidSignatureException",
                    "MissingAuthenticationTokenException"):
            reason = Reason.INVALID_CREDENTIALS
        elif code in ("ExpiredToken",) and what == "AssumeRole":
            reason = Reason.EXPIRED_CREDENTIALS
        elif code in ("AccessDenied", "InvalidIdentityToken", "ExpiredTokenException", "IDPRejectedClaim",
                      "IDPCommunicationError", "MalformedPolicyDocument", "RegionDisabledException") or \
                status in (400, 401, 403):
            reason = Reason.ASSUME_ROLE_DENIED
        else:
            reason = classify(exc)
        return IdentityError(reason, f"{what} failed: {code or status}")
    return IdentityError(classify(exc), f"{what} failed: {type(exc).__name__}")
