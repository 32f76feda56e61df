"""`attributes`: HeadObject of the canary, reading size and last-modified."""

from __future__ import annotations

from exporter.operations.base import CycleState, ProbeFailure, ProbeOperation
from exporter.probes.keyspace import CANARY_PAYLOAD
from exporter.profiles import Operation
from exporter.reasons import Reason


class Attributes(ProbeOperation):
    name = Operation.ATTRIBUTES
    s3_requests = "HeadObject"

    def run(self, state: CycleState) -> None:
        head = state.bucket.head(state.bucket.keyspace.canary)
        size = head.get("ContentLength")
        if size != len(CANARY_PAYLOAD) or head.get("LastModified") is None:
            raise ProbeFailure(Reason.WRONG_CONTENT, f"canary attributes: size {size}, want {len(CANARY_PAYLOAD)}")
