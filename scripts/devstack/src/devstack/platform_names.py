"""The platform's names as the chart renders them: `dags/ml_pipeline/platform_defaults.json`.

That file is generated from `charts/ml-platform/values.yaml` by helm (`make
generate-platform-defaults`, `devstack.generate`); it is the platform config the DAGs read
outside a cluster (docs/CONTRACTS.md section 3). The local stack, the demo and the cluster
harness read their names from it too, so nothing here repeats a name or parses the chart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.errors import DevstackError
from devstack.paths import repo_root

PLATFORM_DEFAULTS = Path("dags") / "ml_pipeline" / "platform_defaults.json"


def load_platform_config(root: Path | None = None) -> dict[str, Any]:
    """The generated platform config of the repository at `root` (default: this checkout)."""
    path = (root or repo_root()) / PLATFORM_DEFAULTS
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise DevstackError(
            f"cannot read the platform config {path} ({exc.strerror}); "
            "run `make generate-platform-defaults` to render it from the chart"
        ) from None
    except json.JSONDecodeError as exc:
        raise DevstackError(
            f"{path} is not JSON ({exc}); run `make generate-platform-defaults` to render it again"
        ) from None


def gpu_profiles(platform: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The GPU pools of a platform config: its profiles with GPUs, by name (the taint
    reconciler's rule; the `cpu` profile is not one)."""
    return {
        name: dict(profile)
        for name, profile in sorted(platform["profiles"].items())
        if int(profile.get("gpus") or 0) > 0
    }


@dataclass(frozen=True)
class PlatformNames:
    """The names the local stack needs: buckets by role, the registered model and experiment,
    and the Airflow connection of the object store."""

    buckets: dict[str, str]
    model_name: str
    experiment: str
    connection_id: str
    source: str

    def bucket(self, role: str) -> str:
        """The bucket name for a role (`datasets`, `processed`, `mlflow`, `xcom`, `logs`)."""
        try:
            return self.buckets[role]
        except KeyError:
            raise KeyError(
                f"no bucket for role {role!r} in {self.source}; roles: {sorted(self.buckets)}"
            ) from None


def load_platform_names(root: Path | None = None) -> PlatformNames:
    """Buckets, model, experiment and connection id of the generated platform config."""
    platform = load_platform_config(root)
    return PlatformNames(
        buckets={str(role): str(name) for role, name in platform["buckets"].items()},
        model_name=str(platform["model"]["name"]),
        experiment=str(platform["model"]["experiment"]),
        connection_id=str(platform["objectStoreConnectionId"]),
        source=str((root or repo_root()) / PLATFORM_DEFAULTS),
    )
