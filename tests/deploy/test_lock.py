"""requirements.lock: exactly the runtime dependency closure, hash-pinned for both architectures.

The lock is written by scripts/lock-requirements.sh from the dev venv's versions; `--check` re-resolves against the
index and fails if the lock no longer matches the venv. These checks are offline: they walk the installed
distributions' metadata from pyproject's [project].dependencies. They do not require the venv's versions to equal
the lock's, because `dev` installs the venv unconstrained (newest releases) and botocore alone releases almost daily.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.support import REPO

LOCK = REPO / "requirements.lock"
ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def parse_lock(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    for chunk in re.sub(r"\\\n", " ", text).splitlines():
        chunk = chunk.strip()
        if not chunk or chunk.startswith("#"):
            continue
        first, *hashes = chunk.split()
        match = ENTRY.match(first)
        assert match, f"not a pinned requirement: {chunk}"
        assert all(HASH.match(h) for h in hashes), chunk
        entries[canonicalize_name(match["name"])] = (match["version"], hashes)
    return entries


def runtime_closure() -> dict[str, str]:
    """name -> installed version, for the project's runtime requirements and theirs (no extras)."""
    roots = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [Requirement(r) for r in roots]
    seen: dict[str, str] = {}
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        dist = metadata.distribution(req.name)
        seen[name] = dist.version
        todo.extend(Requirement(r) for r in dist.requires or [])
    return seen


@pytest.fixture(scope="module")
def lock() -> dict[str, tuple[str, list[str]]]:
    return parse_lock(LOCK.read_text())


def test_lock_has_exactly_the_runtime_closure(lock: dict[str, tuple[str, list[str]]]) -> None:
    assert sorted(lock) == sorted(runtime_closure())


def test_locked_versions_satisfy_pyproject(lock: dict[str, tuple[str, list[str]]]) -> None:
    for raw in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(raw)
        assert req.specifier.contains(lock[canonicalize_name(req.name)][0]), raw


def test_lock_has_no_test_or_demo_packages(lock: dict[str, tuple[str, list[str]]]) -> None:
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    extras = {canonicalize_name(Requirement(r).name) for reqs in optional.values() for r in reqs}
    extras.discard(canonicalize_name("objstore-permission-exporter"))
    runtime = set(runtime_closure())
    assert not (set(lock) & (extras - runtime)), "test/demo packages in the lock"
    assert "moto" not in lock and "pytest" not in lock
    assert canonicalize_name("objstore-permission-exporter") not in lock


def test_every_pin_has_hashes_for_both_architectures(lock: dict[str, tuple[str, list[str]]]) -> None:
    for name, (_, hashes) in lock.items():
        assert hashes, name
        wheel = metadata.distribution(name).read_text("WHEEL") or ""
        platform_specific = not all(t.endswith("-none-any") for t in re.findall(r"^Tag: (\S+)", wheel, re.M))
        # A compiled wheel differs between x86_64 and aarch64: one hash each.
        assert len(hashes) >= (2 if platform_specific else 1), f"{name}: {len(hashes)} hash(es)"


def test_parse_lock_rejects_an_unpinned_line() -> None:
    with pytest.raises(AssertionError):
        parse_lock("boto3>=1.34\n")
    digest = "--hash=sha256:" + "a" * 64
    assert parse_lock(f"boto3==1.0 \\\n    {digest}\n") == {"boto3": ("1.0", [digest])}
