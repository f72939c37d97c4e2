"""The trainer against the real MinIO + MLflow servers of the local stack.

One day of data is generated, validated and preprocessed once per module; a few training
runs are shared by the tests (tiny epochs: the point is the plumbing, not the accuracy).
Every test that touches the registry uses its own registered model name, so the tests do not
depend on each other's aliases.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devstack.stack import Stack
from trainer_support import CliRun, closed_port, isolated_environ, run_trainer, trainer_env_of

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
DATE = "2031-01-15"  # far from any date the DAG tests use
EXPERIMENT = "trainer-tests"
GOOD = ["--lr", "0.01", "--batch-size", "64", "--optimizer", "adam", "--epochs", "4", "--seed", "1"]
GOOD += ["--hidden-sizes", "64"]
WEAK = [
    "--lr",
    "0.0001",
    "--batch-size",
    "64",
    "--optimizer",
    "sgd",
    "--epochs",
    "1",
    "--seed",
    "1",
]
WEAK += ["--hidden-sizes", "16"]


@dataclass(frozen=True)
class Day:
    features_uri: str
    data_path: str
    generated: dict[str, Any]
    validated: dict[str, Any]
    preprocessed: dict[str, Any]


def _model_name() -> str:
    return f"digits-test-{uuid.uuid4().hex[:8]}"


def _train_argv(extra: list[str], trial: str, day: Day) -> list[str]:
    checkpoint = f"{day.data_path}checkpoints/{trial}/"
    return [
        *("train", *extra, "--data-path", day.data_path, "--experiment-name", EXPERIMENT),
        *("--trial-id", trial, "--checkpoint-uri", checkpoint),
    ]


def _train(
    stack: Stack, xcom: Path, day: Day, hyperparameters: list[str], trial: str, **env: str
) -> CliRun:
    with isolated_environ(**trainer_env_of(stack), **env):
        return run_trainer(_train_argv(hyperparameters, trial, day), xcom)


def _val_loss_steps(client, run_id: str) -> list[int]:
    return [metric.step for metric in client.get_metric_history(run_id, "val_loss")]


def _aliases(stack: Stack, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(MlflowClient(tracking_uri=stack.mlflow_uri).get_registered_model(name).aliases)


@pytest.fixture(scope="module")
def day(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Day:
    """generate-data -> validate -> preprocess through the CLI, as the DAG's first three pods."""
    xcom = tmp_path_factory.mktemp("day") / "return.json"
    features = f"s3://{stack.buckets['datasets']}/daily/{DATE}/features.parquet"
    data_path = f"s3://{stack.buckets['processed']}/{DATE}/"
    with isolated_environ(**trainer_env_of(stack)):
        generated = run_trainer(["generate-data", "--date", DATE, "--output", features], xcom)
        validated = run_trainer(["validate", "--input", features], xcom)
        preprocessed = run_trainer(
            ["preprocess", "--input", features, "--output-prefix", data_path], xcom
        )
    for step in (generated, validated, preprocessed):
        assert step.code == 0 and step.xcom is not None
    return Day(features, data_path, generated.xcom, validated.xcom, preprocessed.xcom)


def _trained(
    stack: Stack, xcom: Path, day: Day, hyperparameters: list[str], trial: str, **env: str
) -> dict[str, Any]:
    """The XCom result of a training run that must succeed."""
    run = _train(stack, xcom, day, hyperparameters, trial, **env)
    assert run.code == 0 and run.xcom is not None, run.stderr
    return run.xcom


@pytest.fixture(scope="module")
def good_run(stack: Stack, day: Day, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    xcom = tmp_path_factory.mktemp("good") / "return.json"
    return _trained(stack, xcom, day, GOOD, "good", GIT_SHA="0123abc", IMAGE_TAG="0.1.0-test")


@pytest.fixture(scope="module")
def weak_run(stack: Stack, day: Day, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _trained(stack, tmp_path_factory.mktemp("weak") / "return.json", day, WEAK, "weak")


# ---------------------------------------------------------------------------- happy path
def test_generate_validate_preprocess_train_evaluate_deploy_end_to_end(
    stack: Stack, stack_env: dict[str, str], day: Day, good_run: dict[str, Any], trainer
) -> None:
    from mlflow import MlflowClient

    assert (
        day.generated.items()
        >= {"uri": day.features_uri, "rows": 1797, "columns": 65, "drift": 0.0}.items()
    )
    assert day.validated["checks_passed"] == [
        "schema",
        "nulls",
        "ranges",
        "min_rows",
        "class_balance",
        "duplicates",
    ]
    assert day.validated["report_uri"].endswith(f"/daily/{DATE}/validation_report.json")
    assert (day.preprocessed["train_rows"], day.preprocessed["test_rows"]) == (1437, 360)

    contract_keys = {
        "accuracy",
        "f1_score",
        "loss",
        "run_id",
        "model_uri",
        "params",
        "trial_id",
        "device",
    }
    assert contract_keys | {"epochs_run", "resumed_from_epoch"} <= good_run.keys()
    assert (
        good_run["accuracy"] > 0.9
        and good_run["device"] == "cpu"
        and good_run["resumed_from_epoch"] == 0
    )
    assert good_run["params"]["optimizer"] == "adam" and good_run["params"]["hidden_sizes"] == [64]

    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    run = client.get_run(good_run["run_id"])
    assert run.data.params["lr"] == "0.01" and run.data.params["batch_size"] == "64"
    assert run.data.tags["data_hash"] == day.preprocessed["data_hash"]
    assert run.data.tags["date"] == DATE and run.data.tags["trial_id"] == "good"
    assert run.data.tags["git_sha"] == "0123abc" and run.data.tags["image_tag"] == "0.1.0-test"
    assert run.data.tags["device"] == "cpu"
    assert _val_loss_steps(client, good_run["run_id"]) == [1, 2, 3, 4]
    assert run.data.metrics["test_accuracy"] == pytest.approx(good_run["accuracy"])

    name = _model_name()
    evaluated = _evaluate(trainer, good_run, name, day)
    assert evaluated.code == 0, evaluated.stderr
    assert evaluated.xcom["should_deploy"] is True
    assert evaluated.xcom["baseline_accuracy"] == 0.0 and evaluated.xcom["champion_version"] is None
    assert f"no registered model {name!r}" in evaluated.xcom["reason"]
    assert evaluated.xcom["new_accuracy"] == pytest.approx(good_run["accuracy"], abs=0.01)

    deployed = trainer(
        "deploy", "--run-id", good_run["run_id"], "--model-name", name, "--data-path", day.data_path,
        "--reason", "first model", "--deployed-by", "pytest",
    )  # fmt: skip
    assert deployed.code == 0, deployed.stderr
    assert deployed.xcom == {
        "model_name": name,
        "version": "1",
        "alias": "champion",
        "previous_version": None,
        "model_uri": f"models:/{name}/1",
        "smoke_test_rows": 32,
    }
    assert _aliases(stack, name) == {"champion": "1"}
    tags = client.get_model_version(name, "1").tags
    assert tags["deployed_by"] == "pytest" and tags["deploy_reason"] == "first model"
    assert "deployed_at" in tags and tags["smoke_test"].startswith("passed")
    assert client.get_model_version(name, "1").current_stage in (
        None,
        "None",
    )  # stages are never used


def test_same_seed_gives_the_same_metrics_on_cpu(
    stack: Stack, day: Day, good_run: dict[str, Any], tmp_path: Path
) -> None:
    again = _train(stack, tmp_path / "again.json", day, GOOD, f"again-{uuid.uuid4().hex[:6]}")
    assert again.code == 0 and again.xcom is not None
    assert again.xcom["run_id"] != good_run["run_id"]
    for key in (
        "accuracy",
        "f1_score",
        "loss",
        "val_accuracy",
        "val_f1_score",
        "val_loss",
        "best_epoch",
        "epochs_run",
    ):
        assert again.xcom[key] == good_run[key], key


def test_a_killed_training_resumes_from_its_checkpoint_in_the_same_mlflow_run(
    stack: Stack, day: Day, good_run: dict[str, Any], tmp_path: Path
) -> None:
    """The seed's call shape (`python train.py …`) is killed after epoch 2, then rerun."""
    from ml_trainer.checkpoint import CheckpointStore
    from ml_trainer.storage import ObjectStore
    from mlflow import MlflowClient

    trial = f"killed-{uuid.uuid4().hex[:6]}"
    argv = _train_argv(GOOD, trial, day)[1:]  # train.py is `trainer train`
    env = {
        **subprocess_env(),
        **trainer_env_of(stack),
        "XCOM_RETURN_PATH": str(tmp_path / "killed.json"),
    }
    killed = subprocess.run(
        [sys.executable, str(REPO / "images" / "trainer" / "train.py"), *argv],
        env={**env, "ML_TRAINER_TEST_KILL_AFTER_EPOCH": "2"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == 137, killed.stderr[-3000:]
    assert not (tmp_path / "killed.json").exists()

    with isolated_environ(**trainer_env_of(stack)):
        checkpoint = CheckpointStore(f"{day.data_path}checkpoints/{trial}/", ObjectStore()).load()
    assert checkpoint is not None and checkpoint.epoch == 2 and not checkpoint.completed
    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    assert client.get_run(checkpoint.mlflow_run_id).info.status == "RUNNING"  # died without cleanup

    resumed = _train(stack, tmp_path / "resumed.json", day, GOOD, trial)
    assert resumed.code == 0 and resumed.xcom is not None
    assert resumed.xcom["resumed_from_epoch"] == 2 and resumed.xcom["epochs_run"] == 4
    assert resumed.xcom["run_id"] == checkpoint.mlflow_run_id
    assert client.get_run(checkpoint.mlflow_run_id).info.status == "FINISHED"
    assert _val_loss_steps(client, checkpoint.mlflow_run_id) == [1, 2, 3, 4]
    # the interrupted run ends exactly where the uninterrupted one did
    for key in ("accuracy", "f1_score", "loss", "val_accuracy", "best_epoch"):
        assert resumed.xcom[key] == good_run[key], key

    # a retry after completion trains nothing and returns the same result
    again = _train(stack, tmp_path / "again.json", day, GOOD, trial)
    assert again.code == 0 and again.xcom is not None
    assert (
        again.xcom["run_id"] == resumed.xcom["run_id"]
        and again.xcom["accuracy"] == resumed.xcom["accuracy"]
    )
    assert again.xcom["resumed_from_epoch"] == 4


def subprocess_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}


# ---------------------------------------------------------------------------- registry
def _deploy(trainer, run: dict[str, Any], name: str, day: Day) -> CliRun:
    return trainer(
        "deploy", "--run-id", run["run_id"], "--model-name", name, "--data-path", day.data_path
    )


def _evaluate(trainer, run: dict[str, Any], name: str, day: Day, *extra: str) -> CliRun:
    return trainer(
        "evaluate", "--run-id", run["run_id"], "--data-path", day.data_path, "--model-name", name,
        *extra,
    )  # fmt: skip


def test_deploying_the_same_run_twice_is_idempotent(
    stack: Stack, stack_env: dict[str, str], day: Day, good_run: dict[str, Any], trainer
) -> None:
    from mlflow import MlflowClient

    name = _model_name()
    first, second = _deploy(trainer, good_run, name, day), _deploy(trainer, good_run, name, day)
    assert first.code == second.code == 0, second.stderr
    assert first.xcom == second.xcom
    assert _aliases(stack, name) == {"champion": "1"}
    versions = MlflowClient(tracking_uri=stack.mlflow_uri).search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == ["1"]


@pytest.fixture
def champion(stack_env: dict[str, str], day: Day, good_run: dict[str, Any], trainer) -> str:
    """A new registered model whose champion (version 1) is `good_run`; its name."""
    name = _model_name()
    assert _deploy(trainer, good_run, name, day).code == 0
    return name


def test_a_worse_candidate_never_moves_the_champion(
    stack: Stack,
    day: Day,
    good_run: dict[str, Any],
    weak_run: dict[str, Any],
    trainer,
    champion: str,
) -> None:
    name = champion
    # only the comparison with the champion decides
    gated = _evaluate(trainer, weak_run, name, day, "--min-accuracy", "0.0")
    assert gated.code == 0, gated.stderr
    assert gated.xcom["should_deploy"] is False
    assert gated.xcom["champion_version"] == "1"
    assert gated.xcom["baseline_accuracy"] == pytest.approx(good_run["accuracy"], abs=0.01)
    assert gated.xcom["improvement"] < 0 and "below min_improvement" in gated.xcom["reason"]

    floor = _evaluate(trainer, weak_run, name, day)
    assert floor.xcom["should_deploy"] is False and "below min_accuracy" in floor.xcom["reason"]
    assert _aliases(stack, name) == {"champion": "1"}


def test_rollback_moves_the_champion_back_to_previous(
    stack: Stack, day: Day, weak_run: dict[str, Any], trainer, champion: str
) -> None:
    name = champion
    promoted = _deploy(trainer, weak_run, name, day)
    assert promoted.code == 0 and promoted.xcom["previous_version"] == "1"
    assert _aliases(stack, name) == {"champion": "2", "previous": "1"}

    missing = trainer("rollback", "--model-name", name, "--to-version", "7")
    assert missing.code == 1 and "has no version 7" in missing.stderr
    assert _aliases(stack, name) == {"champion": "2", "previous": "1"}

    rolled = trainer("rollback", "--model-name", name, "--reason", "weak model in production")
    assert rolled.code == 0, rolled.stderr
    assert rolled.xcom == {
        "model_name": name,
        "version": "1",
        "alias": "champion",
        "previous_version": "2",
    }
    assert _aliases(stack, name) == {"champion": "1"}

    again = trainer("rollback", "--model-name", name)
    assert again.code == 1 and "nothing to roll back to" in again.stderr
    assert _aliases(stack, name) == {"champion": "1"}

    pinned = trainer("rollback", "--model-name", name, "--to-version", "2")
    assert pinned.code == 0, pinned.stderr
    assert (pinned.xcom["version"], pinned.xcom["previous_version"]) == ("2", "1")
    assert _aliases(stack, name) == {"champion": "2"}
    same = trainer("rollback", "--model-name", name, "--to-version", "2")
    assert same.code == 1 and "already the champion" in same.stderr


# ---------------------------------------------------------------------------- serving
def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a GET, or of a POST when `body` is given; errors are statuses."""
    import json
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_for(
    what: str, probe, server: subprocess.Popen, log: Path, deadline_s: float = 180.0
) -> Any:
    """Poll `probe()` until it returns something truthy; fail with the server's log otherwise."""
    import time

    end = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail(
                f"trainer serve exited ({server.returncode}) while waiting for {what}:\n"
                + log.read_text()[-3000:]
            )
        try:
            last = probe()
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    pytest.fail(f"no {what} within {deadline_s:.0f} s (last: {last!r}):\n{log.read_text()[-3000:]}")


def test_the_model_server_follows_deploy_and_rollback_without_a_restart(
    stack: Stack,
    stack_env: dict[str, str],
    day: Day,
    good_run: dict[str, Any],
    weak_run: dict[str, Any],
    trainer,
    tmp_path: Path,
) -> None:
    """`trainer serve` as the chart runs it: ready before any champion (503 'no champion
    yet'), then the version each deploy or rollback promotes, in the same process."""
    name, port = _model_name(), closed_port()
    url = f"http://127.0.0.1:{port}"
    rows = {"inputs": [[0.0] * 64, [8.0] * 64, [16.0] * 64]}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "ml_trainer", "serve", "--model-name", name,
             "--host", "127.0.0.1", "--port", str(port), "--poll-seconds", "1"],
            env={**subprocess_env(), **trainer_env_of(stack), "HOME": str(tmp_path)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def serving(version: str | None):
            def probe():
                status, body = _http(f"{url}/version")
                return status == 200 and body["version"] == version and body

            return probe

        assert _wait_for("/health", lambda: _http(f"{url}/health")[0] == 200, server, log_path)

        def looked_up() -> bool:
            return _http(f"{url}/version")[1]["last_checked"] is not None

        _wait_for("the first alias lookup", looked_up, server, log_path)
        status, body = _http(f"{url}/invocations", rows)
        assert status == 503 and body["error"] == "no champion yet: run the training pipeline"
        assert _http(f"{url}/health")[0] == 200  # ready all along: helm --wait is not blocked

        assert _deploy(trainer, good_run, name, day).code == 0  # champion = 1
        _wait_for("version 1", serving("1"), server, log_path)
        status, body = _http(f"{url}/invocations", rows)
        assert status == 200 and body["model_version"] == "1"
        assert len(body["predictions"]) == 3 and all(0 <= p <= 9 for p in body["predictions"])
        assert [len(row) for row in body["logits"]] == [10, 10, 10]

        assert _deploy(trainer, weak_run, name, day).code == 0  # champion = 2, previous = 1
        _wait_for("version 2", serving("2"), server, log_path)
        assert _http(f"{url}/invocations", rows)[1]["model_version"] == "2"

        assert trainer("rollback", "--model-name", name).code == 0  # champion = 1 again
        _wait_for("version 1 after the rollback", serving("1"), server, log_path)
        assert _http(f"{url}/invocations", rows)[1]["model_version"] == "1"

        bad = _http(f"{url}/invocations", {"inputs": [[1.0, 2.0]]})
        assert bad[0] == 400 and "64 pixel values" in bad[1]["error"]
        assert server.poll() is None  # one process throughout: no restart
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert "now serving" in log_path.read_text()


def test_mlflow_down_during_evaluate_fails_and_leaves_the_aliases_alone(
    stack: Stack,
    stack_env: dict[str, str],
    day: Day,
    weak_run: dict[str, Any],
    trainer,
    champion: str,
) -> None:
    """ "Down" is a real closed TCP port on 127.0.0.1 (bound, then released), not a mock."""
    name = champion
    dead = f"http://127.0.0.1:{closed_port()}"
    with isolated_environ(**{**stack_env, "MLFLOW_TRACKING_URI": dead}):
        down = _evaluate(trainer, weak_run, name, day)
    assert down.code == 1 and down.xcom is None
    assert f"MLflow tracking server at {dead} is unreachable" in down.stderr
    assert _aliases(stack, name) == {"champion": "1"}


# ---------------------------------------------------------------------------- broken artifacts
@pytest.fixture
def broken_run(stack: Stack, day: Day, tmp_path: Path) -> dict[str, Any]:
    """A trained run whose model artifacts were then deleted from the object store."""
    return _trained(stack, tmp_path / "broken.json", day, WEAK, f"broken-{uuid.uuid4().hex[:6]}")


def _delete_model_artifacts(stack: Stack, model_uri: str) -> int:
    model_id = model_uri.removeprefix("models:/")
    s3, bucket = stack.s3_client(), stack.buckets["mlflow"]
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
        if f"/models/{model_id}/" in obj["Key"]
    ]
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)
    return len(keys)


def test_a_champion_whose_artifacts_were_deleted_fails_evaluate_and_a_failed_smoke_test_restores_aliases(
    stack: Stack,
    stack_env: dict[str, str],
    day: Day,
    good_run: dict[str, Any],
    broken_run: dict[str, Any],
    trainer,
) -> None:
    broken_champion, healthy = _model_name(), _model_name()
    assert _deploy(trainer, broken_run, broken_champion, day).code == 0
    assert _deploy(trainer, good_run, healthy, day).code == 0
    assert _delete_model_artifacts(stack, broken_run["model_uri"]) > 0

    # evaluate: the champion exists but cannot be read -> fail, never deploy blind
    evaluated = _evaluate(trainer, good_run, broken_champion, day)
    assert evaluated.code == 1 and evaluated.xcom is None
    assert (
        "champion (version 1)" in evaluated.stderr and "will not deploy blind" in evaluated.stderr
    )
    assert _aliases(stack, broken_champion) == {"champion": "1"}

    # deploy: the promoted model fails its smoke test -> aliases put back, command fails
    deployed = _deploy(trainer, broken_run, healthy, day)
    assert deployed.code == 1 and deployed.xcom is None
    assert "Smoke test" in deployed.stderr and "aliases restored" in deployed.stderr
    assert _aliases(stack, healthy) == {"champion": "1"}


# ---------------------------------------------------------------------------- bad input
def _put(stack: Stack, key: str, body: bytes) -> str:
    stack.s3_client().put_object(Bucket=stack.buckets["datasets"], Key=key, Body=body)
    return f"s3://{stack.buckets['datasets']}/{key}"


def _parquet(frame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _bad_partition(stack: Stack, case: str) -> str:
    import numpy as np
    from ml_trainer import data

    key = f"daily/bad-{case}-{uuid.uuid4().hex[:6]}/features.parquet"
    if case == "missing":
        return f"s3://{stack.buckets['datasets']}/{key}"
    if case == "corrupt":
        return _put(stack, key, b"PAR1 this is not really parquet")
    frame = data.generate(DATE, rows=600)
    if case == "wrong-columns":
        frame = frame.rename(columns={"label": "digit"})
    if case == "nans":
        frame.loc[:4, "pixel_20"] = np.nan
    if case == "too-few-rows":
        frame = frame.head(120)
    return _put(stack, key, _parquet(frame))


@pytest.mark.parametrize(
    ("case", "problem", "fix"),
    [
        ("missing", "does not exist at http://127.0.0.1", "the partition has not arrived"),
        ("corrupt", "is not a readable parquet file", "regenerate it upstream"),
        (
            "wrong-columns",
            "[schema] missing columns label; unexpected columns digit",
            "fix the partition upstream",
        ),
        ("nans", "[nulls] 5 null/NaN cells in pixel_20 (5)", "fix the partition upstream"),
        (
            "too-few-rows",
            "[min_rows] only 120 rows, fewer than the minimum 500",
            "fix the partition upstream",
        ),
    ],
)
def test_validate_refuses_a_bad_partition_naming_the_problem_and_the_fix(
    stack: Stack, stack_env: dict[str, str], trainer, case: str, problem: str, fix: str
) -> None:
    uri = _bad_partition(stack, case)
    run = trainer("validate", "--input", uri)
    assert run.code == 1 and run.xcom is None
    assert uri in run.stderr and problem in run.stderr
    assert f"Fix: {fix}" in run.stderr or fix in run.stderr
    report_key = uri.removeprefix(f"s3://{stack.buckets['datasets']}/").replace(
        "features.parquet", "validation_report.json"
    )
    listed = (
        stack.s3_client()
        .list_objects_v2(Bucket=stack.buckets["datasets"], Prefix=report_key)
        .get("KeyCount", 0)
    )
    assert listed == (1 if case in ("wrong-columns", "nans", "too-few-rows") else 0)


def test_train_names_a_missing_processed_split(
    stack: Stack, stack_env: dict[str, str], trainer
) -> None:
    path = f"s3://{stack.buckets['processed']}/2031-12-31/"
    run = trainer("train", *GOOD, "--data-path", path, "--experiment-name", EXPERIMENT)
    assert run.code == 1
    assert (
        f"{path}train.parquet does not exist" in run.stderr and "trainer preprocess" in run.stderr
    )


def test_train_names_an_unreachable_object_store(
    stack: Stack, stack_env: dict[str, str], day: Day, trainer
) -> None:
    """AWS_ENDPOINT_URL is a real closed port on 127.0.0.1 (MLflow stays up)."""
    dead = f"http://127.0.0.1:{closed_port()}"
    with isolated_environ(**{**stack_env, "AWS_ENDPOINT_URL": dead}):
        run = trainer("train", *GOOD, "--data-path", day.data_path, "--experiment-name", EXPERIMENT)
    assert run.code == 1 and f"Cannot reach the object store at {dead}" in run.stderr
