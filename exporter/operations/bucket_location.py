"""`bucket_location`: GetBucketLocation, which minio-go issues when neither config nor endpoint names a region."""

from __future__ import annotations

from exporter.operations.base import CycleState, ProbeOperation
from exporter.profiles import Operation


class BucketLocation(ProbeOperation):
    name = Operation.BUCKET_LOCATION
    s3_requests = "GetBucketLocation"

    def run(self, state: CycleState) -> None:
        state.region = state.bucket.bucket_location()
