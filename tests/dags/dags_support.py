"""Shared helpers of the DAG tests (a uniquely named module: every test folder has a conftest).

Parsing happens in the test process (like the DAG processor) with the environment a test sets;
`ml_pipeline`'s per-process caches are cleared around each parse so the runtime switch and
the platform config are read again.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py"))

# Airflow reads its config on first import: keep it off the developer's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-dags-tests-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


# Read at parse or pod-build time; the tests set them explicitly when they need them.
ENV_OVERRIDES = {"ML_PLATFORM_CONFIG", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL"}


def clear_pipeline_caches() -> None:
    from ml_pipeline.config import platform_config
    from ml_pipeline.settings import pipeline_settings

    pipeline_settings.cache_clear()
    platform_config.cache_clear()


# What `ti.xcom_pull` returns in the fake contexts (task_id, key) -> value.
FAKE_XCOMS: dict[tuple[str, str], Any] = {
    ("hyperparameter_tuning.select_best_model", "return_value"): SimpleNamespace(
        run_id="run-abc123"
    ),
    ("evaluate_model", "reason"): "candidate 0.9700 >= champion 0.9500 + 0.005",
}


def task_context(
    dag: Any,
    task: Any,
    *,
    ds: str | None = "2024-03-01",
    logical_date: datetime | None = None,
    run_after: datetime | None = None,
    map_index: int = -1,
    **params: Any,
):
    """A minimal template context for rendering and `build_pod_request_obj` (no DB, no API).

    By default a scheduled run of `ds`. `logical_date` sets another logical date (the UI's
    "now"); `ds=None` makes a run without a logical date (then `run_after` says when it was
    triggered), whose context has no `ds` / `logical_date` at all, as in Airflow 3.
    """
    values = dag.params.validate()
    values.update(params)
    if logical_date is None and ds is not None:
        logical_date = datetime.fromisoformat(ds).replace(tzinfo=UTC)
    run_after = run_after or logical_date
    ti = SimpleNamespace(
        dag_id=dag.dag_id, task_id=task.task_id, map_index=map_index, try_number=1, start_date=None
    )
    ti.xcom_pull = lambda task_ids=None, key="return_value", **_: FAKE_XCOMS.get((task_ids, key))
    scheduled = logical_date is not None and logical_date == run_after
    run_id = f"{'scheduled' if scheduled else 'manual'}__{run_after.isoformat()}"
    dag_run = SimpleNamespace(
        run_id=run_id,
        dag_id=dag.dag_id,
        logical_date=logical_date,
        run_after=run_after,
        run_type="scheduled" if scheduled else "manual",
        triggering_user_name=None if scheduled else "admin",
    )
    context = {
        "ti": ti,
        "task_instance": ti,
        "task": task,
        "dag": dag,
        "run_id": run_id,
        "dag_run": dag_run,
        "params": values,
    }
    if logical_date is not None:
        day = logical_date.date().isoformat()
        context.update(ds=day, ds_nodash=day.replace("-", ""), logical_date=logical_date)
    return context
