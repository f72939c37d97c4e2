"""Failures that need no server: unreachable endpoints (real closed ports), XCom, the decision."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from ml_trainer import tracking, xcom
from ml_trainer.errors import TrainerError
from ml_trainer.evaluate import decide
from ml_trainer.storage import ObjectStore, S3Uri
from trainer_support import closed_port


def test_an_unreachable_object_store_is_named_in_the_error() -> None:
    """AWS_ENDPOINT_URL points at a real closed port on 127.0.0.1 (not a mock)."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    started = time.monotonic()
    with pytest.raises(TrainerError) as failure:
        ObjectStore().read_bytes(S3Uri.parse("s3://datasets/daily/2026-01-15/features.parquet"))
    assert time.monotonic() - started < 30
    assert f"Cannot reach the object store at {endpoint}" in str(failure.value)
    assert "s3://datasets/daily/2026-01-15/features.parquet" in str(failure.value)
    assert "AWS_ENDPOINT_URL" in failure.value.fix


def test_an_unreachable_mlflow_server_is_named_within_seconds() -> None:
    """MLFLOW_TRACKING_URI points at a real closed port on 127.0.0.1 (not a mock)."""
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(TrainerError) as failure:
        tracking.check_reachable(uri)
    assert time.monotonic() - started < 15
    assert f"MLflow tracking server at {uri} is unreachable" in str(failure.value)
    assert "MLFLOW_TRACKING_URI" in failure.value.fix


def test_a_missing_tracking_uri_says_how_to_set_it() -> None:
    with pytest.raises(TrainerError, match="MLFLOW_TRACKING_URI is not set"):
        tracking.configure()


def test_xcom_is_one_json_object_in_a_created_folder(tmp_path: Path) -> None:
    target = tmp_path / "airflow" / "xcom" / "return.json"
    os.environ["XCOM_RETURN_PATH"] = str(target)
    xcom.write_xcom(
        {"accuracy": 0.97, "loss": float("nan"), "params": {"hidden_sizes": (256, 256)}}
    )
    assert json.loads(target.read_text()) == {
        "accuracy": 0.97,
        "loss": None,
        "params": {"hidden_sizes": [256, 256]},
    }
    assert len(target.read_text().strip().splitlines()) == 1


def test_xcom_defaults_to_the_kubernetes_pod_operator_path() -> None:
    del os.environ["XCOM_RETURN_PATH"]
    assert xcom.xcom_path() == Path("/airflow/xcom/return.json")


@pytest.mark.parametrize(
    ("candidate", "baseline", "min_accuracy", "min_improvement", "deploy", "phrase"),
    [
        (0.95, 0.0, 0.9, 0.0, True, "beats"),
        (0.85, 0.0, 0.9, 0.0, False, "below min_accuracy"),
        (0.95, 0.96, 0.9, 0.0, False, "below min_improvement"),
        (0.95, 0.94, 0.9, 0.02, False, "below min_improvement"),
        (0.95, 0.95, 0.9, 0.0, True, "beats"),
    ],
)
def test_should_deploy_needs_min_accuracy_and_min_improvement(
    candidate: float,
    baseline: float,
    min_accuracy: float,
    min_improvement: float,
    deploy: bool,
    phrase: str,
) -> None:
    should, reason = decide(
        candidate, baseline, min_accuracy, min_improvement, "champion version 3"
    )
    assert should is deploy
    assert phrase in reason


def test_s3_uris_are_parsed_strictly() -> None:
    uri = S3Uri.parse("s3://processed/2026-01-15")
    assert str(uri.join("train.parquet")) == "s3://processed/2026-01-15/train.parquet"
    assert (
        str(S3Uri.parse("s3://d/daily/x/features.parquet").sibling("r.json"))
        == "s3://d/daily/x/r.json"
    )
    with pytest.raises(TrainerError, match="not an object-storage URI"):
        S3Uri.parse("processed/2026-01-15/")
