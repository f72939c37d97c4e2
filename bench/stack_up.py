"""Local stack start-up: cold `up` (fresh root, includes `airflow db migrate`), warm `up`
(root already initialised) and `down`, each timed on its own temp root and free ports."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from devstack.stack import Stack

from bench.harness import Measurement

NAME = "stack_up"


def _timed_up(root: Path) -> tuple[float, Stack]:
    stack = Stack(root, minio_port=None, minio_console_port=None, mlflow_port=None)
    started = time.perf_counter()
    stack.up()
    return time.perf_counter() - started, stack


def _timed_down(stack: Stack) -> float:
    started = time.perf_counter()
    stack.down()
    return time.perf_counter() - started


def run() -> list[Measurement]:
    root = Path(tempfile.mkdtemp(prefix="bench-stack-up-"))
    stack: Stack | None = None
    try:
        cold, stack = _timed_up(root)
        cold_steps = dict(stack.timings)
        _timed_down(stack)
        warm, stack = _timed_up(root)
        warm_steps = dict(stack.timings)
        down = _timed_down(stack)
        stack = None
    finally:
        if stack is not None:
            stack.down()
        shutil.rmtree(root, ignore_errors=True)
    steps = "MinIO and MLflow start one after the other; the DB migration runs beside MLflow"
    return [
        Measurement(NAME, "cold_up", cold, "s", notes=f"fresh root; {steps}", extra=cold_steps),
        Measurement(
            NAME,
            "airflow_db_migrate",
            cold_steps.get("airflow_db_migrate", 0.0),
            "s",
            notes="inside cold_up, in parallel with the MLflow start",
        ),
        Measurement(NAME, "warm_up", warm, "s", notes="root already initialised", extra=warm_steps),
        Measurement(NAME, "down", down, "s", notes="SIGTERM to both process groups"),
    ]
