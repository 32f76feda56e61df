"""The closed set of failure reasons (the only values of the `reason` label), and how errors map onto them."""

from __future__ import annotations

import socket
from enum import StrEnum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)


class Reason(StrEnum):
    ACCESS_DENIED = "access_denied"
    KMS_ACCESS_DENIED = "kms_access_denied"
    INVALID_CREDENTIALS = "invalid_credentials"
    EXPIRED_CREDENTIALS = "expired_credentials"
    NO_SUCH_BUCKET = "no_such_bucket"
    WRONG_REGION = "wrong_region"
    NOT_FOUND = "not_found"
    WRONG_CONTENT = "wrong_content"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    NO_ROLE_ANNOTATION = "no_role_annotation"
    SERVICE_ACCOUNT_NOT_FOUND = "service_account_not_found"
    TOKEN_REQUEST_DENIED = "token_request_denied"
    ASSUME_ROLE_DENIED = "assume_role_denied"
    IDENTITY_MISMATCH = "identity_mismatch"
    SKIPPED_DEPENDENCY = "skipped_dependency"
    OTHER = "other"


_CODES: dict[str, Reason] = {
    "AccessDenied": Reason.ACCESS_DENIED,
    "AllAccessDisabled": Reason.ACCESS_DENIED,
    "AccountProblem": Reason.ACCESS_DENIED,
    "KMS.AccessDeniedException": Reason.KMS_ACCESS_DENIED,
    "KMS.DisabledException": Reason.KMS_ACCESS_DENIED,
    "KMS.NotFoundException": Reason.KMS_ACCESS_DENIED,
    "KMS.KMSInvalidStateException": Reason.KMS_ACCESS_DENIED,
    "InvalidAccessKeyId": Reason.INVALID_CREDENTIALS,
    "SignatureDoesNotMatch": Reason.INVALID_CREDENTIALS,
    "InvalidToken": Reason.INVALID_CREDENTIALS,
    "InvalidClientTokenId": Reason.INVALID_CREDENTIALS,
    "IncompleteSignature": Reason.INVALID_CREDENTIALS,
    "MissingAuthenticationToken": Reason.INVALID_CREDENTIALS,
    "ExpiredToken": Reason.EXPIRED_CREDENTIALS,
    "ExpiredTokenException": Reason.EXPIRED_CREDENTIALS,
    "RequestExpired": Reason.EXPIRED_CREDENTIALS,
    "TokenRefreshRequired": Reason.EXPIRED_CREDENTIALS,
    "NoSuchBucket": Reason.NO_SUCH_BUCKET,
    "PermanentRedirect": Reason.WRONG_REGION,
    "AuthorizationHeaderMalformed": Reason.WRONG_REGION,
    "IllegalLocationConstraintException": Reason.WRONG_REGION,
    "InvalidRegion": Reason.WRONG_REGION,
    "301": Reason.WRONG_REGION,
    "NoSuchKey": Reason.NOT_FOUND,
    "NotFound": Reason.NOT_FOUND,
    "404": Reason.NOT_FOUND,
    "SlowDown": Reason.THROTTLED,
    "Throttling": Reason.THROTTLED,
    "ThrottlingException": Reason.THROTTLED,
    "RequestLimitExceeded": Reason.THROTTLED,
    "TooManyRequestsException": Reason.THROTTLED,
    "RequestTimeout": Reason.TIMEOUT,
}


def classify_status(status: int) -> Reason:
    """Classify by HTTP status alone: some S3-compatible servers answer without a parsable error code."""
    if status in (401, 403):
        return Reason.ACCESS_DENIED
    if status == 404:
        return Reason.NOT_FOUND
    if status == 301:
        return Reason.WRONG_REGION
    if status in (429, 503):
        return Reason.THROTTLED
    if status >= 500:
        return Reason.SERVER_ERROR
    return Reason.OTHER


def classify_client_error(err: ClientError) -> Reason:
    error = err.response.get("Error", {}) or {}
    code = str(error.get("Code") or "")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _CODES:
        return _CODES[code]
    if code.startswith("KMS.") or (status == 403 and "kms" in str(error.get("Message", "")).lower()):
        return Reason.KMS_ACCESS_DENIED
    if status:
        return classify_status(status)
    return Reason.OTHER


def classify(exc: BaseException) -> Reason:
    """Map any exception raised while talking to S3/STS onto a failure reason. Never raises."""
    if isinstance(exc, ClientError):
        return classify_client_error(exc)
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | socket.timeout | TimeoutError):
        return Reason.TIMEOUT
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ConnectionError):
        return Reason.CONNECTION_ERROR
    if isinstance(exc, NoCredentialsError):
        return Reason.INVALID_CREDENTIALS
    if isinstance(exc, BotoCoreError):
        text = type(exc).__name__
        if "Timeout" in text:
            return Reason.TIMEOUT
        if "Connection" in text or "SSL" in text or "Proxy" in text:
            return Reason.CONNECTION_ERROR
    return Reason.OTHER
