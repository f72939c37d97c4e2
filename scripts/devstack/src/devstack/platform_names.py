"""Platform names defined once in `charts/ml-platform/values.yaml` (bucket list, model names).

The chart's values file is the source of truth (docs/CONTRACTS.md section 2); the defaults
below are used only when that file is absent and are kept equal to the contract.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.paths import repo_root

log = logging.getLogger(__name__)

VALUES_FILE = Path("charts") / "ml-platform" / "values.yaml"

DEFAULT_BUCKETS: dict[str, str] = {
    "datasets": "datasets",
    "processed": "processed",
    "mlflow": "mlflow",
    "xcom": "xcom",
    "logs": "logs",
}
DEFAULT_MODEL_NAME = "digits-classifier"
DEFAULT_EXPERIMENT = "ml-training-pipeline"


@dataclass(frozen=True)
class PlatformNames:
    """The names the local stack needs: buckets by role, the registered model and experiment."""

    buckets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BUCKETS))
    model_name: str = DEFAULT_MODEL_NAME
    experiment: str = DEFAULT_EXPERIMENT
    source: str = "defaults (docs/CONTRACTS.md)"

    def bucket(self, role: str) -> str:
        """The bucket name for a role (`datasets`, `processed`, `mlflow`, `xcom`, `logs`)."""
        try:
            return self.buckets[role]
        except KeyError:
            raise KeyError(
                f"no bucket for role {role!r} in {self.source}; roles: {sorted(self.buckets)}"
            ) from None


def load_platform_names(root: Path | None = None) -> PlatformNames:
    """Read `objectStore.buckets`, `model.name` and `model.experiment` from the chart values.

    Falls back to the documented defaults when the values file does not exist; a key the
    file lacks also keeps its default.
    """
    values_path = (root or repo_root()) / VALUES_FILE
    if not values_path.is_file():
        log.debug("%s not found; using the documented default names", values_path)
        return PlatformNames()
    values: dict[str, Any] = yaml.safe_load(values_path.read_text()) or {}
    buckets = (values.get("objectStore") or {}).get("buckets") or DEFAULT_BUCKETS
    model = values.get("model") or {}
    return PlatformNames(
        buckets={str(role): str(name) for role, name in buckets.items()},
        model_name=str(model.get("name", DEFAULT_MODEL_NAME)),
        experiment=str(model.get("experiment", DEFAULT_EXPERIMENT)),
        source=str(values_path),
    )
