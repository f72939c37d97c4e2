"""Fixtures of the local-stack tests (helpers: stack_support)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from devstack.process import processes_naming
from stack_support import clean_environ, run_devstack, run_python_json, stop_everything_under

RunPython = Callable[[str, Mapping[str, str]], dict[str, Any]]


@pytest.fixture
def run_python() -> RunPython:
    """`run_python(code, env) -> dict`: code in a fresh interpreter, last line parsed as JSON."""
    return run_python_json


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The caller's environment without AWS/MLflow/Airflow/devstack/pipeline variables."""
    return clean_environ()


@pytest.fixture
def leftover_processes() -> Callable[[Path], list[str]]:
    """`leftover_processes(root)`: processes still running for a stack root (should be none)."""
    return processes_naming


@pytest.fixture
def stack_root(tmp_path: Path) -> Iterator[Path]:
    """A fresh root for a test that starts its own stack; everything under it is stopped at
    teardown, pass or fail (what a failed test left is killed and reported)."""
    root = tmp_path / "root"
    yield root
    if root.exists():
        stop_everything_under(root)


@pytest.fixture
def devstack_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`devstack_cli(*args, env=None, timeout=300)`: run the installed `devstack` command."""
    return run_devstack
