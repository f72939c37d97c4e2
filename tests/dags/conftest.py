"""Fixtures for the DAG tests: parse the DAG files in a chosen runtime (helpers: dags_support)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dags_support import DAGS
from devstack.dag_pods import ENV_OVERRIDES, clear_pipeline_caches


@pytest.fixture
def parse_dags(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """`parse_dags(runtime="kubernetes", path=None, **env)` → a DagBag of `path` (default: dags/)."""

    def _parse(runtime: str = "kubernetes", path: Path | None = None, **env: str) -> Any:
        from airflow.dag_processing.dagbag import DagBag

        # A developer's shell may hold the stack's env (`eval "$(devstack env)"`): start clean.
        for name in list(os.environ):
            if name.startswith("ML_PIPELINE_") or name in ENV_OVERRIDES:
                monkeypatch.delenv(name)
        monkeypatch.setenv("ML_PIPELINE_RUNTIME", runtime)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        clear_pipeline_caches()
        return DagBag(str(path or DAGS))

    yield _parse
    clear_pipeline_caches()
