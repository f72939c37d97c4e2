"""The local stack reads its names from the generated platform config
(dags/ml_pipeline/platform_defaults.json), never from copies of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from devstack.errors import DevstackError
from devstack.platform_names import (
    PLATFORM_DEFAULTS,
    gpu_profiles,
    load_platform_config,
    load_platform_names,
)
from devstack.stack import stack_env
from devstack.state import Credentials, StackState


def _repo_with_config(tmp_path: Path, **changes: object) -> Path:
    config = {**load_platform_config(), **changes}
    path = tmp_path / PLATFORM_DEFAULTS
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(config))
    return tmp_path


def test_names_are_the_generated_platform_config(tmp_path: Path) -> None:
    root = _repo_with_config(
        tmp_path,
        buckets={"datasets": "ds-x", "xcom": "xc-x"},
        model={"name": "other-model", "experiment": "other-exp"},
        objectStoreConnectionId="object_store",
    )
    names = load_platform_names(root)
    assert names.buckets == {"datasets": "ds-x", "xcom": "xc-x"}
    assert (names.model_name, names.experiment) == ("other-model", "other-exp")
    assert names.connection_id == "object_store"
    assert names.source == str(root / PLATFORM_DEFAULTS)
    with pytest.raises(KeyError, match="no bucket for role 'logs'"):
        names.bucket("logs")


def test_a_missing_platform_config_names_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(DevstackError, match="make generate-platform-defaults"):
        load_platform_names(tmp_path)


def test_the_airflow_connection_of_the_stack_is_the_platform_connection_id(
    tmp_path: Path,
) -> None:
    names = load_platform_names(_repo_with_config(tmp_path, objectStoreConnectionId="objstore"))
    state = StackState(
        root=str(tmp_path), credentials=Credentials("a", "b"), buckets={"xcom": "xc"}
    )
    env = stack_env(tmp_path, state, names, s3_port=9000, mlflow_port=5000)
    assert json.loads(env["AIRFLOW_CONN_OBJSTORE"])["extra"]["endpoint_url"] == (
        "http://127.0.0.1:9000"
    )
    assert env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"] == "s3://objstore@xc/xcom"
    assert "AIRFLOW_CONN_AWS_DEFAULT" not in env


def test_gpu_pools_are_the_profiles_with_gpus() -> None:
    platform = load_platform_config()
    pools = gpu_profiles(platform)
    assert pools and "cpu" not in pools
    assert set(pools) == {n for n, p in platform["profiles"].items() if p["gpus"] > 0}
