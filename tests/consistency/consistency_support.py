"""Loaders for the cross-part agreement tests (imported by name: unique across tests/).

Each loader reads one part's own file; a part that is not delivered yet makes the test FAIL
with a message naming the missing file and its owner, never skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "ml-platform"
KIND_CONFIG = REPO / "k8s" / "kind" / "cluster.yaml"
EKS_CONFIG = REPO / "k8s" / "eks" / "cluster.yaml"
GKE_CONFIG = REPO / "k8s" / "gke" / "node-pools.yaml"


def require(path: Path, owner: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO)} does not exist yet - {owner}", pytrace=False)
    return path


def load_yaml(path: Path, owner: str) -> Any:
    return yaml.safe_load(require(path, owner).read_text())


def chart_values() -> dict[str, Any]:
    return load_yaml(CHART_DIR / "values.yaml", "the chart part (charts/ml-platform)")


def chart_metadata() -> dict[str, Any]:
    return load_yaml(CHART_DIR / "Chart.yaml", "the chart part (charts/ml-platform)")


def enabled_pools(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """gpuPools entries that are on (null or enabled: false drops a pool)."""
    return {
        name: pool
        for name, pool in (values.get("gpuPools") or {}).items()
        if pool is not None and pool.get("enabled", True)
    }


def taint_string(taint: dict[str, str]) -> str:
    return f"{taint['key']}={taint['value']}:{taint['effect']}"
