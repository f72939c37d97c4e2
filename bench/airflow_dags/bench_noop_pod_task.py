"""One no-op pod task in the local runtime: what `bench/real_airflow.py` times per task."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag
from ml_pipeline.params import MACROS
from ml_pipeline.pod_tasks import pod_task


@dag(
    dag_id="bench_noop_pod_task",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    user_defined_macros=MACROS,
    tags=["bench"],
)
def bench_noop_pod_task():
    pod_task("noop", "validate", ["--input", "s3://datasets/noop.parquet"], retries=0)


bench_noop_pod_task()
