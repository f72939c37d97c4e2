"""Read the GPU pools and the taint from the platform config (docs/CONTRACTS.md section 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taint_reconciler.logic import Pool, Taint


class ConfigError(ValueError):
    """The platform config lacks what the reconciler needs."""


@dataclass(frozen=True)
class ReconcilerConfig:
    taint: Taint
    pools: tuple[Pool, ...]


def parse(data: dict[str, Any], source: str = "platform.json") -> ReconcilerConfig:
    """GPU profiles (gpus > 0) become pools; the `cpu` profile and other CPU profiles do not."""
    try:
        raw_taint = data["gpuTaint"]
        taint = Taint(
            str(raw_taint["key"]), str(raw_taint.get("value") or ""), str(raw_taint["effect"])
        )
        profiles = data["profiles"]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{source}: missing {exc} (expected gpuTaint and profiles)") from None
    pools = []
    for name, profile in sorted(profiles.items()):
        if int(profile.get("gpus") or 0) <= 0:
            continue
        labels = {str(k): str(v) for k, v in (profile.get("nodeLabels") or {}).items()}
        if not labels:
            raise ConfigError(
                f"{source}: GPU profile {name!r} has no nodeLabels; it would match every node"
            )
        pools.append(Pool(name=name, node_labels=labels))
    if pools and not (taint.key and taint.effect):
        raise ConfigError(
            f"{source}: gpuTaint needs a key and an effect while GPU pools are enabled"
        )
    return ReconcilerConfig(taint=taint, pools=tuple(pools))


def load(path: str | Path) -> ReconcilerConfig:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the platform config {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    return parse(data, str(path))
