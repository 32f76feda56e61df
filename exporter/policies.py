"""Least-privilege IAM policies derived from the component profiles (used by docs, deploy examples, the demo).

The same operation -> IAM action table that drives the probes drives these documents, so what the README
recommends is exactly what the exporter checks.
"""

from __future__ import annotations

from typing import Any

from exporter.profiles import OPERATION_ACTIONS, PROFILES, Component, Operation

_BUCKET_LEVEL = frozenset({"s3:ListBucket", "s3:GetBucketLocation"})  # on the bucket ARN; the rest on objects


def _objects_arn(bucket: str, prefix: str) -> str:
    return f"arn:aws:s3:::{bucket}/{prefix.strip('/')}/*" if prefix.strip("/") else f"arn:aws:s3:::{bucket}/*"


def _bucket_statements(bucket: str, prefix: str, actions: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if "s3:ListBucket" in actions:
        # Deliberately without an `s3:prefix` condition: HEAD/GET of a missing key carries no prefix, so a
        # prefix-conditioned ListBucket turns Thanos's expected 404 into a 403 (a hard error in Exists).
        out.append({"Sid": "List", "Effect": "Allow", "Action": ["s3:ListBucket"],
                    "Resource": f"arn:aws:s3:::{bucket}"})
    if "s3:GetBucketLocation" in actions:
        out.append({"Sid": "Location", "Effect": "Allow", "Action": ["s3:GetBucketLocation"],
                    "Resource": f"arn:aws:s3:::{bucket}"})
    return out


def policy_for_operations(
    bucket: str, prefix: str, operations: frozenset[Operation], abort_multipart: bool = True
) -> dict[str, Any]:
    """An identity policy granting exactly the operations given (plus s3:AbortMultipartUpload for writers)."""
    actions = frozenset().union(*(OPERATION_ACTIONS[op] for op in operations))
    object_actions = sorted(actions - _BUCKET_LEVEL)
    if abort_multipart and "s3:PutObject" in object_actions:
        object_actions.append("s3:AbortMultipartUpload")
    bucket_actions = set(actions & _BUCKET_LEVEL)
    statements = _bucket_statements(bucket, prefix, bucket_actions)
    if object_actions:
        statements.append({"Sid": "Objects", "Effect": "Allow", "Action": object_actions,
                           "Resource": _objects_arn(bucket, prefix)})
    return {"Version": "2012-10-17", "Statement": statements}


def component_policy(component: Component, bucket: str, prefix: str = "", bucket_location: bool = True,
                     without: frozenset[Operation] = frozenset()) -> dict[str, Any]:
    ops = PROFILES[component] | ({Operation.BUCKET_LOCATION} if bucket_location else set())
    return policy_for_operations(bucket, prefix, frozenset(ops) - without)


def janitor_policy(bucket: str, prefix: str, probe_dir: str) -> dict[str, Any]:
    """Write, read and delete only inside the probe dir; list only the probe dir."""
    base = f"{prefix.strip('/')}/{probe_dir}" if prefix.strip("/") else probe_dir
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListProbeDir", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": f"arn:aws:s3:::{bucket}",
             "Condition": {"StringLike": {"s3:prefix": [f"{base}/", f"{base}/*"]}}},
            # incomplete multipart probes are found by listing uploads (not conditioned: s3:prefix does not
            # apply to that action); the listing shows keys only, and only probe-dir ones are aborted
            {"Sid": "Location", "Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
             "Resource": f"arn:aws:s3:::{bucket}"},
            {"Sid": "ProbeObjects", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
             "Resource": f"arn:aws:s3:::{bucket}/{base}/*"},
        ],
    }
