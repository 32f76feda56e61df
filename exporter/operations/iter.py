"""`iter`: ListObjectsV2 (or V1) of the probe dir with delimiter `/`, as Thanos's Iter does."""

from __future__ import annotations

from exporter.operations.base import CycleState, ProbeOperation
from exporter.profiles import Operation


class Iter(ProbeOperation):
    name = Operation.ITER
    s3_requests = "ListObjectsV2 (ListObjects with list_objects_version: v1)"

    def run(self, state: CycleState) -> None:
        state.bucket.list_probe_dir()
