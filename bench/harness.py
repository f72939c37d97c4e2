"""Shared types and output for the benchmarks: one Measurement per reported number."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Measurement:
    """One measured number, with the goal it is held against (if any)."""

    benchmark: str
    metric: str
    value: float
    unit: str
    goal: str = ""
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def run_python_json(code: str, *args: str, env: Mapping[str, str], timeout: float) -> Any:
    """Run `code` with `args` in a fresh interpreter; its last stdout line, parsed as JSON.
    A failed run raises with the end of its stderr (the reason)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(
            f"benchmark worker exited {out.returncode}; last lines of its stderr:\n"
            + "\n".join(out.stderr.strip().splitlines()[-25:])
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import os

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(name: str, measurements: list[Measurement]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"machine": machine(), "measurements": [asdict(m) for m in measurements]}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def format_table(measurements: list[Measurement]) -> str:
    rows = [("benchmark", "metric", "value", "unit", "goal")]
    rows += [(m.benchmark, m.metric, f"{m.value:.4g}", m.unit, m.goal) for m in measurements]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
