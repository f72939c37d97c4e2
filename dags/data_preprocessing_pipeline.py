"""
### data_preprocessing_pipeline — lands the daily feature partition

```
generate_features ─> final_validation
```

The producer of `datasets/daily/<data date>/features.parquet`, the partition
`ml_full_training_pipeline` waits for (its `wait_for_preprocessing` sensor watches
`final_validation` of this DAG's run at 00:00 UTC of that day). The data date is the
`data_date` Param, else the day of the logical date, else the day the run was triggered.

* `generate_features` runs `trainer generate-data` (a pod task, CPU profile): a deterministic
  partition from the date; the Params `rows` and `drift` make bigger or drifted days.
* `final_validation` checks that the object landed whole: present, non-empty, parquet magic
  bytes at both ends, and the producer's row count. The data contract (schema, ranges,
  nulls, balance) is checked by the consumer's `validate_data`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import dag, task
from ml_pipeline.config import pipeline_settings, platform_config
from ml_pipeline.notify import FailureWebhookNotifier
from ml_pipeline.params import MACROS, default_args, producer_params, with_params
from ml_pipeline.pod_tasks import pod_task
from ml_pipeline.run_context import DATA_DATE, context_data_date

cfg = platform_config()
settings = pipeline_settings()
log = logging.getLogger(__name__)

PARQUET_MAGIC = b"PAR1"


@dag(
    dag_id="data_preprocessing_pipeline",
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(settings),
    user_defined_macros=MACROS,
    tags=["ml", "data"],
    doc_md=__doc__,
    on_failure_callback=FailureWebhookNotifier(),
)
def data_preprocessing_pipeline():
    generate_features = pod_task(
        "generate_features",
        "generate-data",
        [
            "--date", DATA_DATE,
            "--output", cfg.features_uri(DATA_DATE),
            "--drift", "{{ params.drift }}",
            "--rows", "{{ params.rows }}",
            "--seed", "{{ params.seed }}",
        ],
        read_only_volume=True,
    )  # fmt: skip

    @task
    def final_validation(landed: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The partition is there and whole (not the data contract: that is validate_data's)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.sdk.exceptions import AirflowException

        bucket, key = cfg.bucket("datasets"), cfg.features_key(context_data_date(context))
        expected = f"s3://{bucket}/{key}"
        if landed.get("uri") != expected:
            raise AirflowException(
                f"generate_features landed {landed.get('uri')!r}, expected {expected}"
            )
        client = S3Hook(aws_conn_id=cfg.object_store_conn_id).get_conn()
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        head = client.get_object(Bucket=bucket, Key=key, Range="bytes=0-3")["Body"].read()
        tail = client.get_object(Bucket=bucket, Key=key, Range="bytes=-4")["Body"].read()
        if size < 12 or head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
            raise AirflowException(f"{expected} ({size} bytes) is not a complete parquet file")
        rows = int(landed.get("rows") or 0)
        if rows <= 0:
            raise AirflowException(f"generate_features reported {rows} rows for {expected}")
        log.info(
            "landed %s: %d bytes, %d rows, drift=%s", expected, size, rows, landed.get("drift")
        )
        return {"uri": expected, "bytes": size, "rows": rows}

    final_validation(generate_features.output)


with_params(data_preprocessing_pipeline(), producer_params())
