"""The identity-source interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from exporter.credentials import Credentials
from exporter.reasons import Reason


@dataclass(frozen=True)
class ResolvedIdentity:
    """Credentials to probe with (None = anonymous, unsigned) and the `source` label value.

    `principal_hint` is the ARN STS named when it issued the credentials; used when the server cannot
    answer GetCallerIdentity (Ceph RGW does not implement it).
    """

    credentials: Credentials | None
    source: str
    principal_hint: str = ""


class IdentityError(Exception):
    """Obtaining credentials failed for `reason`.

    `fallback` carries what the pod would really run as (e.g. the node role when a ServiceAccount has no role
    annotation): the identity is reported failed, and the operations are still probed as the fallback.
    """

    def __init__(self, reason: Reason, message: str, fallback: ResolvedIdentity | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.fallback = fallback


class IdentitySource(ABC):
    """Produces credentials for one target. Called from worker threads, only through `CredentialCache`."""

    @abstractmethod
    def resolve(self) -> ResolvedIdentity:
        """Obtain fresh credentials, or raise IdentityError."""
