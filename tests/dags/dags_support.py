"""Shared helpers of the DAG tests (a uniquely named module: every test folder has a conftest).

Parsing happens in the test process (like the DAG processor) with the environment a test sets;
`ml_pipeline`'s per-process caches are cleared around each parse so the runtime switch and
the platform config are read again. The parse environment, the run context and the pod builder
are shared with the cluster tests and the placement benchmark: `devstack.dag_pods`.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py"))
