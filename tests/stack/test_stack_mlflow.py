"""MLflow tracking through the server: params, metrics and an artifact proxied into MinIO."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from devstack.stack import Stack

pytestmark = pytest.mark.stack

LOG_A_RUN = """
import json, os, pathlib, tempfile
import mlflow

assert "AWS_ACCESS_KEY_ID" not in os.environ and "MLFLOW_S3_ENDPOINT_URL" not in os.environ
mlflow.set_experiment("devstack-smoke")
with mlflow.start_run() as run:
    mlflow.log_params({"lr": "0.01", "optimizer": "adam"})
    mlflow.log_metric("accuracy", 0.93)
    report = pathlib.Path(tempfile.mkdtemp()) / "report.txt"
    report.write_text("hello from devstack")
    mlflow.log_artifact(str(report))
print(json.dumps({"run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri}))
"""


def test_mlflow_run_artifact_lands_in_the_minio_bucket_through_the_server_proxy(
    stack: Stack, run_python: Callable[..., dict[str, Any]], clean_env: dict[str, str]
) -> None:
    # The client gets only the tracking URI: no S3 endpoint, no credentials, no AWS config.
    client_env = clean_env | {
        "MLFLOW_TRACKING_URI": stack.mlflow_uri,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    run = run_python(LOG_A_RUN, client_env)
    assert run["artifact_uri"].startswith("mlflow-artifacts:/")

    got = requests.get(
        f"{stack.mlflow_uri}/api/2.0/mlflow/runs/get", params={"run_id": run["run_id"]}, timeout=10
    ).json()["run"]["data"]
    assert {p["key"]: p["value"] for p in got["params"]} == {"lr": "0.01", "optimizer": "adam"}
    assert {m["key"]: m["value"] for m in got["metrics"]} == {"accuracy": 0.93}

    bucket = stack.buckets["mlflow"]
    s3 = stack.s3_client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    suffix = f"/{run['run_id']}/artifacts/report.txt"
    matches = [key for key in keys if key.endswith(suffix)]
    assert matches, f"no *{suffix} in bucket {bucket}: {keys}"
    body = s3.get_object(Bucket=bucket, Key=matches[0])["Body"].read()
    assert body == b"hello from devstack"
