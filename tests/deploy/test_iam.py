"""deploy/iam: the example IAM policies are exactly exporter/policies.py's output, and least-privilege."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exporter.config import GlobalSettings
from tests.deploy.support import DEPLOY

IAM = DEPLOY / "iam"
BUCKET, PREFIX = "thanos", "cluster-a"
COMPONENT_FILES = ("compactor", "store", "sidecar", "receive", "rule", "bucket-web")


def _policy(name: str) -> dict[str, Any]:
    return dict(json.loads((IAM / name).read_text()))


def _actions(policy: dict[str, Any]) -> set[str]:
    return {a for s in policy["Statement"] for a in s["Action"]}


def _resources(policy: dict[str, Any], action: str) -> set[str]:
    return {s["Resource"] for s in policy["Statement"] if action in s["Action"]}


def test_committed_policies_equal_the_generator_output(generator: ModuleType) -> None:
    generated = generator.render_iam()
    assert sorted(p.name for p in IAM.glob("*.json")) == sorted(generated)
    assert set(generated) == {f"{c}.json" for c in COMPONENT_FILES} | {"janitor.json", "exporter.json"}
    for name, text in generated.items():
        assert (IAM / name).read_text() == text, f"deploy/iam/{name} is stale: run deploy/generate.py"


@pytest.mark.parametrize("name", [f"{c}.json" for c in COMPONENT_FILES] + ["janitor.json", "exporter.json"])
def test_policies_are_scoped_to_the_example_bucket_and_prefix(name: str) -> None:
    policy = _policy(name)
    assert policy["Version"] == "2012-10-17"
    for stmt in policy["Statement"]:
        assert stmt["Effect"] == "Allow"
        assert all("*" not in a for a in stmt["Action"])
        if any(a.startswith("s3:") for a in stmt["Action"]):
            resource = stmt["Resource"]
            assert resource == f"arn:aws:s3:::{BUCKET}" or resource.startswith(f"arn:aws:s3:::{BUCKET}/{PREFIX}/")


def test_component_policies_follow_the_profiles() -> None:
    """Spot checks of what each component may do (exporter/profiles.py), as the files say it."""
    writers = {"compactor", "sidecar", "receive", "rule"}
    for component in COMPONENT_FILES:
        actions = _actions(_policy(f"{component}.json"))
        assert "s3:GetObject" in actions  # every component reads (Exists)
        assert ("s3:PutObject" in actions) == (component in writers)
        assert ("s3:AbortMultipartUpload" in actions) == (component in writers)
        assert ("s3:DeleteObject" in actions) == (component == "compactor")
        assert _resources(_policy(f"{component}.json"), "s3:GetObject") == {f"arn:aws:s3:::{BUCKET}/{PREFIX}/*"}
        # Least privilege: GetBucketLocation only on request (configs without a region).
        assert "s3:GetBucketLocation" not in actions


def test_janitor_is_confined_to_the_probe_dir() -> None:
    probe_dir = f"{PREFIX}/{GlobalSettings().probe_dir}"
    janitor = _policy("janitor.json")
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert _resources(janitor, action) == {f"arn:aws:s3:::{BUCKET}/{probe_dir}/*"}
    (listing,) = [s for s in janitor["Statement"] if "s3:ListBucket" in s["Action"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{probe_dir}/", f"{probe_dir}/*"]}}


def test_exporter_policy_is_the_janitor_plus_pod_identity() -> None:
    exporter, janitor = _policy("exporter.json"), _policy("janitor.json")
    assert exporter["Statement"][:-1] == janitor["Statement"]
    extra = exporter["Statement"][-1]
    assert extra["Action"] == ["eks-auth:AssumeRoleForPodIdentity"]
    assert extra["Resource"].startswith("arn:aws:eks:") and ":cluster/" in extra["Resource"]


def test_generator_writes_policies_for_another_bucket(generator: ModuleType, tmp_path: Path) -> None:
    assert generator.main(["--iam-out", str(tmp_path), "--bucket", "metrics", "--prefix", ""]) == 0
    store = json.loads((tmp_path / "store.json").read_text())
    assert _resources(store, "s3:GetObject") == {"arn:aws:s3:::metrics/*"}
    assert generator.main(["--iam-out", str(tmp_path), "--bucket", "metrics", "--prefix", "", "--check"]) == 0
    assert generator.main(["--iam-out", str(tmp_path), "--bucket", "other", "--check"]) == 1
    assert generator.main(["--iam-out", str(tmp_path), "--bucket", "metrics", "--prefix", "", "--bucket-location"]) == 0
    assert "s3:GetBucketLocation" in _actions(json.loads((tmp_path / "store.json").read_text()))
