"""`delete`: DeleteObject of what this cycle created, checked gone.

When the profile does not require delete (an excess check), or nothing was created, it deletes a key that
was never written instead: 204 means allowed, 403 denied, and no data is touched.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from exporter.operations.base import CycleState, ProbeFailure, ProbeOperation, http_status
from exporter.profiles import Operation
from exporter.reasons import Reason


class Delete(ProbeOperation):
    name = Operation.DELETE
    s3_requests = "DeleteObject"

    def run(self, state: CycleState) -> None:
        bucket = state.bucket
        if Operation.DELETE not in state.required or not state.created:
            bucket.delete(bucket.keyspace.absent_key())
            return
        for key in list(state.created):
            bucket.delete(key)
            try:
                bucket.head(key)
            except ClientError as exc:
                if http_status(exc) in (403, 404):
                    state.deleted.append(key)  # gone (403: no ListBucket to see the absence; trust the 204)
                    continue
                raise
            raise ProbeFailure(Reason.WRONG_CONTENT, "object still present after DeleteObject")
