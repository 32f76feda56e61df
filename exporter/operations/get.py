"""`get`: GetObject of the canary; the body must be the canary's."""

from __future__ import annotations

from exporter.operations.base import CycleState, ProbeFailure, ProbeOperation
from exporter.probes.keyspace import CANARY_PAYLOAD
from exporter.profiles import Operation
from exporter.reasons import Reason


class Get(ProbeOperation):
    name = Operation.GET
    s3_requests = "GetObject"

    def run(self, state: CycleState) -> None:
        status, body = state.bucket.get(state.bucket.keyspace.canary, limit=len(CANARY_PAYLOAD))
        if status != 200 or body != CANARY_PAYLOAD:
            raise ProbeFailure(Reason.WRONG_CONTENT, f"canary GET answered {status} with {len(body)} bytes")
