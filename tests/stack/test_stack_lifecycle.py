"""The session stack is up, healthy, has every bucket and exposes the documented environment."""

from __future__ import annotations

import subprocess

import pytest
import requests
from devstack.paths import repo_root
from devstack.platform_names import load_platform_names
from devstack.stack import Stack

pytestmark = pytest.mark.stack

CONTRACT_ENV = {
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AIRFLOW_HOME",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW_CONN_AWS_DEFAULT",
    "AIRFLOW__CORE__XCOM_BACKEND",
    "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH",
    "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD",
    "ML_PIPELINE_RUNTIME",
}


def test_stack_up_serves_minio_and_mlflow_health_endpoints(stack: Stack) -> None:
    assert stack.is_running()
    assert requests.get(f"{stack.s3_endpoint}/minio/health/live", timeout=5).status_code == 200
    assert requests.get(f"{stack.mlflow_uri}/health", timeout=5).status_code == 200
    assert {s.name for s in stack.status()} == {"minio", "mlflow"}


def test_every_bucket_of_the_one_bucket_list_exists_in_minio(stack: Stack) -> None:
    wanted = set(load_platform_names().buckets.values())
    existing = {b["Name"] for b in stack.s3_client().list_buckets()["Buckets"]}
    assert wanted <= existing
    assert set(stack.buckets.values()) == wanted


def test_env_holds_every_variable_of_the_contract(stack: Stack) -> None:
    env = stack.env()
    assert set(env) >= CONTRACT_ENV
    assert env["ML_PIPELINE_RUNTIME"] == "local"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AWS_ENDPOINT_URL"] == stack.s3_endpoint
    assert env["MLFLOW_TRACKING_URI"] == stack.mlflow_uri
    assert env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"].endswith(
        f"@{stack.buckets['xcom']}/xcom"
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(repo_root() / "dags")


def test_env_command_prints_exports_a_shell_can_eval(stack: Stack) -> None:
    devstack = repo_root() / ".venv" / "bin" / "devstack"
    script = (
        f'eval "$({devstack} env --root {stack.root})" && printf %s "$AIRFLOW_CONN_AWS_DEFAULT"'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == stack.env()["AIRFLOW_CONN_AWS_DEFAULT"]


def test_second_up_on_the_same_root_reuses_the_running_stack(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    pids_before = {s.name: s.pid for s in stack.status()}
    with caplog.at_level("INFO", logger="devstack"):
        again = Stack(stack.root).up()
    assert again.reused
    assert "already running" in caplog.text
    assert {s.name: s.pid for s in again.status()} == pids_before
    assert again.env() == stack.env()
