"""`upload_multipart`: Create/UploadPart/Complete, the path Thanos takes for chunk segments and big indexes."""

from __future__ import annotations

from exporter.operations.base import PROBE_PAYLOAD, CycleState, ProbeOperation
from exporter.profiles import Operation


class UploadMultipart(ProbeOperation):
    name = Operation.UPLOAD_MULTIPART
    s3_requests = "CreateMultipartUpload, UploadPart, CompleteMultipartUpload"

    def run(self, state: CycleState) -> None:
        state.bucket.upload_multipart(state.multipart_key, PROBE_PAYLOAD)
        state.created.append(state.multipart_key)
