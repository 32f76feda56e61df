"""What one probe cycle of one target found: plain values, produced by probes, read by metrics and `check`."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.identities.cache import IdentityStatus
from exporter.profiles import Operation
from exporter.reasons import Reason


@dataclass(frozen=True)
class OperationResult:
    operation: Operation
    required: bool
    success: bool
    reason: Reason | None
    duration_seconds: float
    detail: str = ""


@dataclass(frozen=True)
class CycleResult:
    target: str
    identity: IdentityStatus
    operations: tuple[OperationResult, ...]
    started: float
    finished: float
    leaked_objects: int

    def required_failures(self) -> list[OperationResult]:
        return [op for op in self.operations if op.required and not op.success]

    @property
    def healthy(self) -> bool:
        """Everything the component needs works, under the identity it really has."""
        return self.identity.ok and not self.required_failures()
