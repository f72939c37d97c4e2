"""Fixtures for the trainer tests.

Unit tests need no servers. Tests marked `stack` run against the real MinIO + MLflow servers
of the session fixture `stack` (tests/conftest.py); they call the trainer's CLI entry point
in this process (one torch/MLflow import for the whole module) and, where a process has to
die, in a subprocess.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devstack.stack import Stack
from trainer_support import CliRun, MemoryStore, isolated_environ, run_trainer, trainer_env_of


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path) -> Iterator[None]:
    """Each test starts from the caller's env minus AWS/MLflow settings and gets it back after.

    The trainer sets MLflow retry defaults with os.environ.setdefault and points the MLflow
    client at MLFLOW_TRACKING_URI; neither may leak into other tests.
    """
    with isolated_environ(XCOM_RETURN_PATH=str(tmp_path / "xcom" / "return.json")):
        yield


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def xcom_path() -> Path:
    return Path(os.environ["XCOM_RETURN_PATH"])


@pytest.fixture
def trainer(xcom_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    """`trainer("validate", "--input", uri)` → CliRun(code, xcom, stderr)."""

    def run(*argv: str) -> CliRun:
        return run_trainer(list(argv), xcom_path, capsys)

    return run


@pytest.fixture
def stack_env(stack: Stack) -> dict[str, str]:
    """Point this process's trainer at the session's stack (undone after the test)."""
    env = trainer_env_of(stack)
    os.environ.update(env)
    return env
