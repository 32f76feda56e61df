"""Operations (Thanos objstore vocabulary) and which ones each Thanos component requires."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """Declared in probe order: identity first, then these, in this order."""

    BUCKET_LOCATION = "bucket_location"
    UPLOAD = "upload"
    EXISTS = "exists"
    ATTRIBUTES = "attributes"
    GET = "get"
    GET_RANGE = "get_range"
    ITER = "iter"
    UPLOAD_MULTIPART = "upload_multipart"
    DELETE = "delete"


PROBE_ORDER: tuple[Operation, ...] = tuple(Operation)


class Component(StrEnum):
    COMPACTOR = "compactor"
    STORE = "store"
    SIDECAR = "sidecar"
    RECEIVE = "receive"
    RULE = "rule"
    BUCKET_WEB = "bucket-web"
    TOOLS = "tools"


Op = Operation
PROFILES: dict[Component, frozenset[Operation]] = {
    Component.COMPACTOR: frozenset({Op.ITER, Op.GET, Op.EXISTS, Op.UPLOAD, Op.UPLOAD_MULTIPART, Op.DELETE}),
    Component.STORE: frozenset({Op.ITER, Op.GET, Op.GET_RANGE, Op.EXISTS, Op.ATTRIBUTES}),
    Component.SIDECAR: frozenset({Op.EXISTS, Op.UPLOAD, Op.UPLOAD_MULTIPART}),
    Component.RECEIVE: frozenset({Op.EXISTS, Op.UPLOAD, Op.UPLOAD_MULTIPART}),
    Component.RULE: frozenset({Op.EXISTS, Op.UPLOAD, Op.UPLOAD_MULTIPART}),
    Component.BUCKET_WEB: frozenset({Op.ITER, Op.GET, Op.EXISTS}),
    Component.TOOLS: frozenset({Op.ITER, Op.GET, Op.EXISTS}),
}

# The IAM actions each operation exercises: an operation whose actions are all granted by the required
# ones teaches nothing as an excess check (IAM cannot allow HEAD but deny GET), so it is not probed.
OPERATION_ACTIONS: dict[Operation, frozenset[str]] = {
    Op.ITER: frozenset({"s3:ListBucket"}),
    Op.GET: frozenset({"s3:GetObject"}),
    Op.GET_RANGE: frozenset({"s3:GetObject"}),
    Op.EXISTS: frozenset({"s3:GetObject", "s3:ListBucket"}),
    Op.ATTRIBUTES: frozenset({"s3:GetObject"}),
    Op.UPLOAD: frozenset({"s3:PutObject"}),
    Op.UPLOAD_MULTIPART: frozenset({"s3:PutObject"}),
    Op.DELETE: frozenset({"s3:DeleteObject"}),
    Op.BUCKET_LOCATION: frozenset({"s3:GetBucketLocation"}),
}


# Shown by `check` next to a failing operation.
IAM_ACTIONS: dict[Operation, str] = {op: ", ".join(sorted(actions)) for op, actions in OPERATION_ACTIONS.items()}


def probed_operations(required: frozenset[Operation]) -> frozenset[Operation]:
    """Required operations plus the excess checks worth running.

    Excess checks are skipped for operations implied by the required ones' IAM actions, and for
    bucket_location (harmless to hold; minio-go falls back without it).
    """
    granted = frozenset().union(*(OPERATION_ACTIONS[op] for op in required))
    excess = {
        op for op in Operation
        if op not in required and op is not Op.BUCKET_LOCATION and not OPERATION_ACTIONS[op] <= granted
    }
    return required | excess


def required_operations(
    component: Component,
    add: frozenset[Operation] = frozenset(),
    remove: frozenset[Operation] = frozenset(),
    needs_bucket_location: bool = False,
) -> frozenset[Operation]:
    """The profile, adjusted by the target's overrides; bucket_location only when the client must look the region up."""
    ops = (PROFILES[component] | add) - remove
    if needs_bucket_location and Op.BUCKET_LOCATION not in remove:
        ops |= {Op.BUCKET_LOCATION}
    return frozenset(ops)
