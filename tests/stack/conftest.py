"""Helpers for the local-stack tests: run code in a subprocess with a chosen environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

# Variables a developer's shell may carry that would point a client somewhere else.
FOREIGN_PREFIXES = ("AWS_", "MLFLOW_", "AIRFLOW", "DEVSTACK_")

# The CLI installed next to the interpreter running the tests (`.venv/bin/devstack`).
DEVSTACK = Path(sys.executable).parent / "devstack"

RunPython = Callable[[str, Mapping[str, str]], dict[str, Any]]


def clean_environ() -> dict[str, str]:
    """os.environ without AWS/MLflow/Airflow/devstack settings from the caller's shell."""
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


@pytest.fixture
def run_python() -> RunPython:
    """`run_python(code, env) -> dict`: code in a fresh interpreter, last line parsed as JSON."""
    return run_python_json


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The caller's environment without AWS/MLflow/Airflow/devstack variables."""
    return clean_environ()


def processes_of_root(root: Path) -> list[str]:
    """`pid: cmdline` of live processes whose command line or environment names `root`."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        if state != "Z" and (needle in cmdline or needle in environ):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


@pytest.fixture
def leftover_processes() -> Callable[[Path], list[str]]:
    """`leftover_processes(root)`: processes still running for a stack root (should be none)."""
    return processes_of_root


@pytest.fixture
def devstack_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`devstack_cli(*args, env=None)`: run the installed `devstack` command, capture output."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DEVSTACK), *args],
            env=dict(env) if env is not None else clean_environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
