"""Helpers of the local-stack tests (a uniquely named module: every test folder has a conftest).

Run code or the `devstack` CLI in a subprocess with a clean environment, and stop everything
a test started under its own root, also after a failed assertion.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.process import processes_naming
from devstack.stack import Stack

log = logging.getLogger(__name__)

# Variables a developer's shell may carry that would point a client (or the pipeline's
# settings) somewhere else.
FOREIGN_PREFIXES = ("AWS_", "MLFLOW_", "AIRFLOW", "DEVSTACK_", "ML_PIPELINE_", "ML_PLATFORM_")

# The CLI installed next to the interpreter running the tests (`.venv/bin/devstack`).
DEVSTACK = Path(sys.executable).parent / "devstack"


def clean_environ() -> dict[str, str]:
    """os.environ without AWS/MLflow/Airflow/devstack/pipeline settings from the caller's shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}


def run_python_json(code: str, env: Mapping[str, str], timeout: float = 180) -> dict[str, Any]:
    """Run `code` in a fresh interpreter; its last stdout line is parsed as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_devstack(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed `devstack` command and capture its output."""
    return subprocess.run(
        [str(DEVSTACK), *args],
        env=dict(env) if env is not None else clean_environ(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_everything_under(root: Path) -> list[str]:
    """Teardown of a test's own stack root, pass or fail: `down`, then SIGKILL whatever
    process still names the root (by pid). Returns what had to be killed."""
    Stack(root).down()
    leftovers = processes_naming(root)
    for line in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
    if leftovers:
        log.warning("killed processes a test left under %s: %s", root, leftovers)
    return leftovers
