"""Fixtures for the `kubernetes` identity tests on the moto tier: one Kubernetes API emulator for the package,
a fresh namespace + bucket per test, and moto accepting the unsigned AssumeRoleWithWebIdentity like AWS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.config import Config
from exporter.demo.emulator import Emulator
from exporter.demo.kube_apiserver import KubeApiEmulator
from exporter.policies import component_policy
from exporter.profiles import Component, Operation
from tests.identities.support import ROLE_ANNOTATION, KubeAccess, MintedTokens, moto_unsigned_web_identity
from tests.support.env import ProbeEnv, static


@pytest.fixture(scope="package")
def kube() -> Iterator[KubeApiEmulator]:
    with KubeApiEmulator() as emu:
        yield emu


@pytest.fixture(scope="package")
def minted(kube: KubeApiEmulator) -> MintedTokens:
    return MintedTokens(kube)


@pytest.fixture(scope="package")
def access(kube: KubeApiEmulator, tmp_path_factory: pytest.TempPathFactory) -> KubeAccess:
    return KubeAccess(kube, tmp_path_factory.mktemp("kubeconfigs"))


@pytest.fixture(scope="package")
def exporter_kubeconfig(access: KubeAccess) -> Path:
    """The exporter's kubeconfig with the RBAC it ships (get serviceaccounts, create serviceaccounts/token)."""
    return access.kubeconfig("objstore-permission-exporter")


@pytest.fixture(scope="package")
def web_identity(emulator: Emulator) -> Iterator[None]:
    with moto_unsigned_web_identity():
        yield


class KubeEnv:
    """A fresh bucket (ProbeEnv) plus a fresh namespace on the emulated cluster."""

    def __init__(self, env: ProbeEnv, kube: KubeApiEmulator, kubeconfig: Path) -> None:
        self.env, self.kube, self.kubeconfig = env, kube, kubeconfig
        self.ns = f"thanos-{env.tag}"

    def role(self, component: Component, name: str | None = None,
             without: frozenset[Operation] = frozenset()) -> str:
        return self.env.role(name or component.value, component_policy(component, self.env.bucket, without=without))

    def service_account(self, name: str, role_arn: str | None = None, **annotations: str) -> None:
        ann = {**annotations, **({ROLE_ANNOTATION: role_arn} if role_arn else {})}
        self.kube.add_service_account(self.ns, name, annotations=ann)

    def node(self, without: frozenset[Operation] = frozenset({Operation.DELETE})) -> tuple[str, dict[str, Any]]:
        """The node's instance role, stood in for by a user whose policy lacks `without`: (ARN, identity)."""
        name = f"node-{self.env.tag}"
        keys = self.env.emu.create_user(
            name, component_policy(Component.COMPACTOR, self.env.bucket, without=without))
        return f"arn:aws:iam::{self.env.emu.account_id}:user/{name}", static(*keys)

    def config(self, targets: list[dict[str, Any]], kubeconfig: Path | None = None, **settings: Any) -> Config:
        return self.env.config(targets, kubernetes={"kubeconfig": str(kubeconfig or self.kubeconfig)}, **settings)


@pytest.fixture
def kenv(env: ProbeEnv, kube: KubeApiEmulator, exporter_kubeconfig: Path, web_identity: None) -> KubeEnv:
    return KubeEnv(env, kube, exporter_kubeconfig)
