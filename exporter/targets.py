"""Targets: one Thanos component's identity probing one bucket, resolved from config (or, later, discovery)."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.config import Config, Identity
from exporter.objstore import BucketConfig, S3Config, needs_bucket_location
from exporter.profiles import Component, Operation, probed_operations, required_operations


@dataclass(frozen=True)
class Target:
    name: str
    component: Component
    namespace: str
    service_account: str
    bucket_name: str
    bucket: BucketConfig
    identity: Identity
    required: frozenset[Operation]
    expected_principal: str | None = None

    @property
    def probed(self) -> frozenset[Operation]:
        """Required operations plus meaningful excess checks."""
        return probed_operations(self.required)

    @property
    def s3(self) -> S3Config:
        return self.bucket.config

    @property
    def prefix(self) -> str:
        return self.bucket.prefix


def build_targets(config: Config) -> list[Target]:
    targets = []
    for t in config.targets:
        bucket = config.buckets[t.bucket].config
        required = required_operations(
            t.component,
            frozenset(t.profile.add),
            frozenset(t.profile.remove),
            needs_bucket_location(bucket.config),
        )
        targets.append(
            Target(
                name=t.name,
                component=t.component,
                namespace=t.namespace,
                service_account=t.service_account,
                bucket_name=t.bucket,
                bucket=bucket,
                identity=t.identity,
                required=required,
                expected_principal=t.expected_principal,
            )
        )
    return targets
