"""Which STS endpoint IRSA's AssumeRoleWithWebIdentity goes to (no request is sent: AWS is never contacted).

In the component's pods, the EKS webhook's `eks.amazonaws.com/sts-regional-endpoints` annotation picks a
regional STS, and a Thanos objstore `sts_endpoint` (used by minio-go for the web identity exchange) wins over
both; the exporter must call the same STS or it would test a different path (e.g. a VPC endpoint).
"""

from __future__ import annotations

from typing import Any

import pytest

from exporter.config import parse_config
from exporter.identities.kubernetes import KubernetesSource
from exporter.identities.registry import build_source
from exporter.targets import build_targets


def _source(objstore: dict[str, Any], **identity: Any) -> KubernetesSource:
    config = parse_config({
        "buckets": {"b": {"objstore": {"type": "S3", "config": {"bucket": "thanos", **objstore}}}},
        "targets": [{"name": "t", "component": "compactor", "namespace": "thanos", "service_account": "sa",
                     "bucket": "b", "identity": {"source": "kubernetes", **identity}}]})
    [target] = build_targets(config)
    source = build_source(target.identity, target.s3, config.global_, target.namespace, target.service_account)
    assert isinstance(source, KubernetesSource)
    return source


REGIONAL = {"eks.amazonaws.com/sts-regional-endpoints": "true"}


@pytest.mark.parametrize(("objstore", "identity", "annotations", "endpoint"), [
    ({"endpoint": "s3.eu-west-1.amazonaws.com"}, {}, {}, "https://sts.amazonaws.com"),
    ({"endpoint": "s3.eu-west-1.amazonaws.com"}, {}, REGIONAL, "https://sts.eu-west-1.amazonaws.com"),
    ({"endpoint": "s3.cn-north-1.amazonaws.com.cn"}, {}, REGIONAL, "https://sts.cn-north-1.amazonaws.com.cn"),
    ({"endpoint": "s3.eu-west-1.amazonaws.com", "sts_endpoint": "https://vpce-123.sts.eu-west-1.vpce.amazonaws.com"},
     {}, REGIONAL, "https://vpce-123.sts.eu-west-1.vpce.amazonaws.com"),
    ({"endpoint": "s3.eu-west-1.amazonaws.com"}, {"sts_endpoint": "https://sts.example.internal"}, REGIONAL,
     "https://sts.example.internal"),
    ({"endpoint": "rgw.example.internal:8080", "insecure": True}, {}, REGIONAL, "http://rgw.example.internal:8080"),
], ids=["global", "regional", "china", "objstore-sts-endpoint", "identity-sts-endpoint", "non-aws"])
def test_irsa_sts_endpoint(objstore: dict[str, Any], identity: dict[str, Any], annotations: dict[str, str],
                           endpoint: str) -> None:
    assert _source(objstore, **identity)._irsa_sts(annotations).endpoint == endpoint
