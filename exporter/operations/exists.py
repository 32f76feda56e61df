"""`exists`: HeadObject of the canary (200) and of an absent key, which must be 404 and not 403.

Thanos treats a 403 for a missing key as a hard error (shipper, markers, block deletion), so an identity
without s3:ListBucket fails here even though HEAD of the canary works.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from exporter.operations.base import CycleState, ProbeFailure, ProbeOperation, http_status
from exporter.profiles import Operation
from exporter.reasons import Reason, classify


class Exists(ProbeOperation):
    name = Operation.EXISTS
    s3_requests = "HeadObject (canary), HeadObject (absent key)"

    def run(self, state: CycleState) -> None:
        state.bucket.head(state.bucket.keyspace.canary)
        try:
            state.bucket.head(state.bucket.keyspace.absent_key())
        except ClientError as exc:
            if http_status(exc) == 404:
                return
            reason = classify(exc)
            if http_status(exc) == 403:
                raise ProbeFailure(reason, "HEAD of a missing key answered 403, not 404: s3:ListBucket missing") \
                    from None
            raise
        raise ProbeFailure(Reason.WRONG_CONTENT, "HEAD of a key that was never written answered 200")
