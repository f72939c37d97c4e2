"""Fixtures of the cross-part agreement tests (loaders in consistency_support.py)."""

from __future__ import annotations

from typing import Any

import pytest
from consistency_support import (
    EKS_CONFIG,
    GKE_CONFIG,
    KIND_CONFIG,
    chart_metadata,
    chart_values,
    load_yaml,
)


@pytest.fixture(scope="session")
def values() -> dict[str, Any]:
    return chart_values()


@pytest.fixture(scope="session")
def chart_yaml() -> dict[str, Any]:
    return chart_metadata()


@pytest.fixture(scope="session")
def kind() -> dict[str, Any]:
    return load_yaml(KIND_CONFIG, "the dev-loop part (k8s/kind)")


@pytest.fixture(scope="session")
def eks() -> dict[str, Any]:
    return load_yaml(EKS_CONFIG, "the dev-loop part (k8s/eks)")


@pytest.fixture(scope="session")
def gke() -> dict[str, Any]:
    return load_yaml(GKE_CONFIG, "the dev-loop part (k8s/gke)")
