"""`upload`: a single PutObject of a small probe object, with the target's sse_config."""

from __future__ import annotations

from exporter.operations.base import PROBE_PAYLOAD, CycleState, ProbeOperation
from exporter.profiles import Operation


class Upload(ProbeOperation):
    name = Operation.UPLOAD
    s3_requests = "PutObject"

    def run(self, state: CycleState) -> None:
        state.bucket.put(state.upload_key, PROBE_PAYLOAD)
        state.created.append(state.upload_key)
