"""The Airflow home: migrated DB, `aws_default` pointing at MinIO, object-storage XCom backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from devstack.stack import Stack

pytestmark = pytest.mark.stack

PROBE_AIRFLOW = """
import json, os
from airflow.configuration import conf
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import ObjectStoragePath
from airflow.sdk.execution_time.xcom import resolve_xcom_backend

bucket = os.environ["PROBE_BUCKET"]
hook = S3Hook(aws_conn_id="aws_default")
hook.load_string("round trip", key="devstack-test/s3hook.txt", bucket_name=bucket, replace=True)
xcom_probe = ObjectStoragePath(conf.get("common.io", "xcom_objectstorage_path")) / "probe.txt"
xcom_probe.write_text("xcom probe")
backend = resolve_xcom_backend()
print(json.dumps({
    "endpoint": hook.conn_config.endpoint_url,
    "read_back": hook.read_key("devstack-test/s3hook.txt", bucket),
    "xcom_backend": f"{backend.__module__}.{backend.__qualname__}",
    "xcom_threshold": conf.getint("common.io", "xcom_objectstorage_threshold"),
    "xcom_probe": str(xcom_probe),
}))
"""


def test_airflow_metadata_db_is_migrated(stack: Stack) -> None:
    db = stack.airflow_home / "airflow.db"
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master")}
    assert {"alembic_version", "dag_run", "task_instance", "xcom"} <= tables


def test_aws_default_connection_resolves_to_minio_and_s3hook_round_trips(
    stack: Stack, run_python: Callable[..., dict[str, Any]], clean_env: dict[str, str]
) -> None:
    bucket = stack.buckets["datasets"]
    result = run_python(PROBE_AIRFLOW, clean_env | stack.env() | {"PROBE_BUCKET": bucket})
    assert result["endpoint"] == stack.s3_endpoint
    assert result["read_back"] == "round trip"
    # What the hook wrote is really in MinIO (read back with the stack's own client).
    s3 = stack.s3_client()
    assert s3.get_object(Bucket=bucket, Key="devstack-test/s3hook.txt")["Body"].read() == (
        b"round trip"
    )
    # The XCom backend is the object-storage one, writing into the xcom bucket on MinIO.
    assert result["xcom_backend"] == (
        "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
    )
    assert result["xcom_threshold"] > 0
    assert result["xcom_probe"] == f"s3://aws_default@{stack.buckets['xcom']}/xcom/probe.txt"
    assert s3.get_object(Bucket=stack.buckets["xcom"], Key="xcom/probe.txt")["Body"].read() == (
        b"xcom probe"
    )
