"""Credentials cached per target, refreshed before they expire, with the principal checked after each refresh.

Credentials are never fetched per probe: STS, the Kubernetes TokenRequest API and IMDS are called only when
nothing is cached or the cached credentials come within the refresh margin of their expiry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from exporter.credentials import Credentials, principal_label, principal_matches
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.identities.sts_context import STSContext
from exporter.reasons import Reason, classify


@dataclass(frozen=True)
class IdentityStatus:
    """What the identity step of a cycle found, and what the operations will be probed as."""

    ok: bool
    reason: Reason | None
    message: str
    source: str
    principal: str
    expiry: datetime | None
    probe_as: ResolvedIdentity | None
    refreshed: bool = False
    refresh_failure: Reason | None = None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode"))


def _not_implemented(exc: ClientError) -> bool:
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status in (405, 501) or _code(exc) in ("NotImplemented", "InvalidAction", "MethodNotAllowed")


def _now() -> datetime:
    return datetime.now(UTC)


class CredentialCache:
    def __init__(
        self,
        source: IdentitySource,
        sts: STSContext,
        refresh_margin: float,
        expected_principal: str | None = None,
        resolve_principal: bool = True,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.source = source
        self.sts = sts
        self.refresh_margin = refresh_margin
        self.expected_principal = expected_principal
        self.resolve_principal = resolve_principal
        self.clock = clock
        self._lock = threading.Lock()
        self._status: IdentityStatus | None = None
        self._obtained_at: datetime | None = None

    def _fresh_enough(self, now: datetime) -> bool:
        status = self._status
        if status is None or status.probe_as is None:
            return False
        creds = status.probe_as.credentials
        if not status.ok or creds is None or creds.expiry is None:
            # failures are retried every cycle; anonymous and static credentials never expire
            return status.ok
        assert self._obtained_at is not None
        lifetime = (creds.expiry - self._obtained_at).total_seconds()
        margin = min(self.refresh_margin, max(lifetime, 0) / 2)
        return (creds.expiry - now).total_seconds() > margin

    def current(self) -> IdentityStatus:
        """The cached status, refreshing first when needed. Never raises."""
        with self._lock:
            now = self.clock()
            if self._fresh_enough(now):
                assert self._status is not None
                return replace(self._status, refreshed=False, refresh_failure=None)
            fresh = self._refresh()
            previous = self._status
            still_valid = (
                previous is not None and previous.ok and previous.probe_as is not None
                and previous.probe_as.credentials is not None
                and (previous.probe_as.credentials.seconds_left(now) or 0) > 0
            )
            if not fresh.ok and fresh.probe_as is None and still_valid:
                # Refresh failed but the old credentials still work: keep probing with them, count the
                # failure; the expiry gauge keeps approaching and the "credentials expiring" alert fires.
                assert previous is not None
                return replace(previous, refreshed=False, refresh_failure=fresh.reason)
            self._status = fresh
            self._obtained_at = now
            return fresh

    def _refresh(self) -> IdentityStatus:
        try:
            resolved = self.source.resolve()
            failure: IdentityError | None = None
        except IdentityError as err:
            if err.fallback is None:
                return IdentityStatus(False, err.reason, str(err), "", "", None, None, refreshed=True)
            resolved, failure = err.fallback, err
        except Exception as exc:  # a source bug or an unforeseen library error: a failure, never a crash
            return IdentityStatus(False, classify(exc), f"identity source failed: {type(exc).__name__}", "", "",
                                  None, None, refreshed=True)
        creds = resolved.credentials
        expiry = creds.expiry if creds else None
        principal = ""
        if self.resolve_principal:
            try:
                principal = self._caller_arn(creds)
            except ClientError as exc:
                if not _not_implemented(exc):
                    reason = failure.reason if failure else classify(exc)
                    message = str(failure) if failure else f"GetCallerIdentity failed: {_code(exc)}"
                    return IdentityStatus(False, reason, message, resolved.source, "", expiry, resolved, True)
                # the server has no GetCallerIdentity (Ceph RGW): trust what STS said when it issued them
                principal = principal_label(resolved.principal_hint)
            except Exception as exc:
                reason = failure.reason if failure else classify(exc)
                message = str(failure) if failure else f"GetCallerIdentity failed: {type(exc).__name__}"
                return IdentityStatus(False, reason, message, resolved.source, "", expiry, resolved, True)
        if failure is not None:
            return IdentityStatus(False, failure.reason, str(failure), resolved.source, principal, expiry,
                                  resolved, True)
        if self.expected_principal and principal and not principal_matches(principal, self.expected_principal):
            message = f"running as {principal}, expected {self.expected_principal}"
            return IdentityStatus(False, Reason.IDENTITY_MISMATCH, message, resolved.source, principal, expiry,
                                  resolved, True)
        return IdentityStatus(True, None, "", resolved.source, principal, expiry, resolved, True)

    def _caller_arn(self, creds: Credentials | None) -> str:
        if creds is None:
            return "anonymous"
        arn = str(self.sts.client(creds).get_caller_identity()["Arn"])
        return principal_label(arn)
