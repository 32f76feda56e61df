"""The operation interface and the per-cycle state the operations share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from botocore.exceptions import ClientError

from exporter.probes.bucket import ProbeBucket
from exporter.profiles import Operation
from exporter.reasons import Reason

PROBE_PAYLOAD = b"objstore-permission-exporter probe object\n"


class ProbeFailure(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class CycleState:
    bucket: ProbeBucket
    upload_key: str
    multipart_key: str
    required: frozenset[Operation]
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    region: str | None = None


class ProbeOperation(ABC):
    name: ClassVar[Operation]
    s3_requests: ClassVar[str]

    @abstractmethod
    def run(self, state: CycleState) -> None:
        """Exercise the operation; return on success, raise ProbeFailure (or a botocore error) otherwise."""


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
