"""`get_range`: GetObject of the canary with a Range header (how store-gateway reads index and chunks)."""

from __future__ import annotations

from exporter.operations.base import CycleState, ProbeFailure, ProbeOperation
from exporter.probes.keyspace import CANARY_PAYLOAD, RANGE_LENGTH
from exporter.profiles import Operation
from exporter.reasons import Reason


class GetRange(ProbeOperation):
    name = Operation.GET_RANGE
    s3_requests = "GetObject (Range: bytes=0-N)"

    def run(self, state: CycleState) -> None:
        status, body = state.bucket.get(state.bucket.keyspace.canary, (0, RANGE_LENGTH - 1), limit=RANGE_LENGTH)
        if status != 206 or body != CANARY_PAYLOAD[:RANGE_LENGTH]:
            raise ProbeFailure(Reason.WRONG_CONTENT, f"ranged GET answered {status} with {len(body)} bytes")
