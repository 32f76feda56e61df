"""All operations, in probe order."""

from __future__ import annotations

from exporter.operations.attributes import Attributes
from exporter.operations.base import ProbeOperation
from exporter.operations.bucket_location import BucketLocation
from exporter.operations.delete import Delete
from exporter.operations.exists import Exists
from exporter.operations.get import Get
from exporter.operations.get_range import GetRange
from exporter.operations.iter import Iter
from exporter.operations.upload import Upload
from exporter.operations.upload_multipart import UploadMultipart
from exporter.profiles import PROBE_ORDER

OPERATIONS: tuple[ProbeOperation, ...] = (
    BucketLocation(), Upload(), Exists(), Attributes(), Get(), GetRange(), Iter(), UploadMultipart(), Delete(),
)
assert tuple(op.name for op in OPERATIONS) == PROBE_ORDER, "operations must be listed in probe order"
