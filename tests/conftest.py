"""Shared fixtures: one moto S3/STS/IAM emulator (IAM enforced) for the session, fresh buckets per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from exporter.demo.emulator import Emulator, start_emulator
from tests.support.env import ProbeEnv

# One Ceph RGW cluster per session, shared by every directory (fixture `rgw`).
pytest_plugins = ["tests.backends.pytest_rgw"]

REQUIRE_REAL_SERVERS = os.environ.get("OPE_REQUIRE_REAL_SERVERS") == "1"


def require_binary(name: str) -> str:
    """Path of a Debian-packaged binary; skip without it, unless CI demands the real servers."""
    path = shutil.which(name)
    if path is None:
        if REQUIRE_REAL_SERVERS:
            pytest.fail(f"{name} is required (OPE_REQUIRE_REAL_SERVERS=1) but not installed")
        pytest.skip(f"{name} not installed (run scripts/install-test-packages.sh)")
    return path


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = start_emulator()
    emu.enforce_iam(True)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def env(emulator: Emulator) -> ProbeEnv:
    return ProbeEnv(emulator)
