"""Fixtures for the deployment tests: the kustomize renderings and the generator module."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.deploy.support import KUSTOMIZATIONS, Doc, load_generator, render


@pytest.fixture(scope="session")
def renderings() -> dict[str, list[Doc]]:
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}


@pytest.fixture(params=list(KUSTOMIZATIONS))
def rendering(request: pytest.FixtureRequest, renderings: dict[str, list[Doc]]) -> tuple[str, list[Doc]]:
    """(name, objects) for each kustomization in turn."""
    name = str(request.param)
    return name, renderings[name]


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()
