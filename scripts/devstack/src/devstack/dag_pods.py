"""The pods the pipeline's DAGs submit in the `kubernetes` runtime, built offline.

    with parse_pipeline("kubernetes", ML_PLATFORM_CONFIG="platform.json") as bag:
        task, pod = build_pod(bag.dags["ml_full_training_pipeline"], TRAIN_TASK, gpu_profile="h100")

`parse_pipeline` parses `dags/` in this process, as the DAG processor does, with the runtime and
platform config of the environment it sets (restored afterwards). `build_pod` renders one task
for a minimal run context and returns the V1Pod the KubernetesPodOperator would create for it
(`build_pod_request_obj(dry_run=True)`): no metadata database, no API server. The context's
XComs are placeholders (`PLACEHOLDER_XCOMS`) for the templates that pull them.

Used by the pod-spec tests (tests/dags), by the cluster tests that create these pods in a real
API server (tests/cluster) and by the placement benchmark (bench/cluster_harness.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from devstack.paths import repo_root

TRAINING_DAG = "ml_full_training_pipeline"
TRAIN_TASK = "hyperparameter_tuning.train_with_hp"
DS = "2024-03-01"
# Read when the DAGs are parsed or a pod is built; parse_pipeline starts without them.
ENV_OVERRIDES = {"ML_PLATFORM_CONFIG", "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL"}

# What `ti.xcom_pull` returns in these contexts: (task_id, key) -> value.
PLACEHOLDER_XCOMS: dict[tuple[str, str], Any] = {
    ("hyperparameter_tuning.select_best_model", "return_value"): SimpleNamespace(
        run_id="run-abc123"
    ),
    ("evaluate_model", "reason"): "candidate 0.9700 >= champion 0.9500 + 0.005",
}


TRIAL_ID = "t00-adam-lr0.001-bs64"


def train_arguments(trial_id: str = TRIAL_ID, ds: str = DS) -> list[str]:
    """The arguments of one mapped training trial (mapped arguments arrive as given)."""
    return [
        "--data-path", f"s3://processed/{ds}/",
        "--optimizer", "adam",
        "--lr", "0.001",
        "--batch-size", "64",
        "--trial-id", trial_id,
    ]  # fmt: skip


def clear_pipeline_caches() -> None:
    """Forget the per-process settings and platform config of `ml_pipeline` (read again)."""
    from ml_pipeline.config import pipeline_settings, platform_config

    pipeline_settings.cache_clear()
    platform_config.cache_clear()


def dags_folder() -> Path:
    return repo_root() / "dags"


@contextmanager
def pipeline_environment(runtime: str, **env: str) -> Iterator[None]:
    """The environment the DAGs are parsed in: the runtime, `env`, nothing else of ours; and,
    as in the DAG processor, the DAGs folder on `sys.path` (for their `ml_pipeline` package)."""
    if str(dags_folder()) not in sys.path:
        sys.path.append(str(dags_folder()))
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("ML_PIPELINE_") or name in ENV_OVERRIDES:
            del os.environ[name]
    os.environ["ML_PIPELINE_RUNTIME"] = runtime
    os.environ.update(env)
    clear_pipeline_caches()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clear_pipeline_caches()


@contextmanager
def parse_pipeline(runtime: str = "kubernetes", **env: str) -> Iterator[Any]:
    """A DagBag of `dags/` parsed in `pipeline_environment(runtime, **env)`; pods built inside
    the block see the same environment."""
    from airflow.dag_processing.dagbag import DagBag

    with pipeline_environment(runtime, **env):
        yield DagBag(str(dags_folder()))


def task_context(
    dag: Any,
    task: Any,
    *,
    ds: str | None = DS,
    logical_date: datetime | None = None,
    run_after: datetime | None = None,
    map_index: int = -1,
    **params: Any,
) -> dict[str, Any]:
    """A minimal template context for rendering and `build_pod_request_obj`.

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
    ti.xcom_pull = lambda task_ids=None, key="return_value", **_: PLACEHOLDER_XCOMS.get(
        (task_ids, key)
    )
    ti.pushed = {}  # what the task pushes (an operator run with this context records here)
    ti.xcom_push = lambda key, value, **_: ti.pushed.__setitem__(key, value)
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


def build_pod(
    dag: Any,
    task_id: str,
    *,
    ds: str = DS,
    arguments: list[str] | None = None,
    **params: Any,
) -> tuple[Any, Any]:
    """(task, V1Pod) of `task_id`; a mapped task is expanded as map index 0 with `arguments`
    (trial `TRIAL_ID`)."""
    task = dag.get_task(task_id)
    map_index = -1
    if task.is_mapped:
        args = list(arguments or train_arguments(ds=ds))
        task = task.unmap({"arguments": args, "trial_id": TRIAL_ID})
        map_index = 0
    context = task_context(dag, task, ds=ds, map_index=map_index, **params)
    task.render_template_fields(context)
    return task, task.build_pod_request_obj(context, dry_run=True)


def pod_manifest(pod: Any) -> dict[str, Any]:
    """A V1Pod as the JSON body the API server takes."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(pod)
