"""The `local` runtime's pod task, with a stand-in trainer (no stack, no torch).

`ML_PIPELINE_LOCAL_COMMAND` points at a small script that behaves like a trainer command:
it prints, writes JSON to `$XCOM_RETURN_PATH` and exits with a chosen code.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from devstack.dag_pods import clear_pipeline_caches

FAKE_TRAINER = textwrap.dedent(
    """
    import json, os, sys, time
    command, args = sys.argv[1], sys.argv[2:]
    mode = os.environ.get("FAKE_MODE", "ok")
    print(f"fake trainer {command} {args}", flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
    path = os.environ["XCOM_RETURN_PATH"]
    previous = os.path.exists(path)
    if mode == "sleep":
        open(os.environ["FAKE_PIDFILE"], "w").write(str(os.getpid()))
        time.sleep(300)
    if mode in ("ok", "fail-with-json"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        env = {k: os.environ.get(k) for k in (
            "MLFLOW_TRACKING_URI", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "DATA_DATE",
            "CUDA_VISIBLE_DEVICES", "MLFLOW_EXPERIMENT_NAME", "ML_PLATFORM_PROFILE",
            "DEPLOYED_BY", "GIT_SHA", "IMAGE_TAG")}
        json.dump({"command": command, "args": args, "env": env, "path": path,
                   "previous_file_existed": previous}, open(path, "w"))
    if mode == "bad-json":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write("[1, 2]")
    if mode.startswith("fail"):
        print("validate: 3 violations: too few rows (120 < 500) ... fix: land a full partition",
              file=sys.stderr)
        sys.exit(2)
    """
)


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    monkeypatch.setenv("ML_PIPELINE_RUNTIME", "local")
    monkeypatch.setenv("ML_PIPELINE_LOCAL_COMMAND", f"{sys.executable} {script}")
    monkeypatch.setenv("ML_PIPELINE_LOCAL_WORKDIR", str(tmp_path / "tries"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-stack")
    monkeypatch.delenv("ML_PLATFORM_CONFIG", raising=False)
    (tmp_path / "tries").mkdir()
    clear_pipeline_caches()
    yield tmp_path
    clear_pipeline_caches()


def make_operator(**kwargs: Any):
    from ml_pipeline.pod_tasks import pod_task

    return pod_task("validate_data", "validate", ["--input", "s3://datasets/x.parquet"], **kwargs)


def context(try_number: int = 1, map_index: int = -1) -> dict[str, Any]:
    """A manual run of 2024-02-03 by `alice`, pinned to bundle version `abc123`."""
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        task_id="data_preparation.validate_data",
        map_index=map_index,
        try_number=try_number,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
        pushed=pushed,
        bundle_instance=SimpleNamespace(name="ml-platform", version="abc123"),
    )
    logical_date = datetime(2024, 2, 3, tzinfo=UTC)
    dag_run = SimpleNamespace(
        dag_id="ml_full_training_pipeline",
        run_id="manual__2024-02-03",
        logical_date=logical_date,
        run_after=logical_date,
        run_type="manual",
        triggering_user_name="alice",
    )
    return {"ti": ti, "dag_run": dag_run, "params": {}, "ds": "2024-02-03"}


def test_the_factory_builds_the_local_operator(local_env) -> None:
    from ml_pipeline.local_runtime import LocalTrainerOperator

    op = make_operator()
    assert isinstance(op, LocalTrainerOperator)
    assert op.namespace == "ml-training" and op.profile == "cpu" and op.do_xcom_push


def test_success_returns_the_json_as_xcom_with_the_env_contract(local_env) -> None:
    op = make_operator()
    result = op.execute(context())
    assert result["command"] == "validate"
    assert result["args"] == ["--input", "s3://datasets/x.parquet"]
    env = result["env"]
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5999"  # from the stack's env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9999"
    assert env["AWS_ACCESS_KEY_ID"] == "from-the-stack"  # credentials: the worker's env
    assert env["DATA_DATE"] == "2024-02-03"
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # cpu profile
    assert env["MLFLOW_EXPERIMENT_NAME"] == "ml-training-pipeline"
    # the audit trail the trainer writes to MLflow (run tags, registered-version tags)
    assert env["DEPLOYED_BY"] == "alice via ml_full_training_pipeline/manual__2024-02-03"
    assert env["GIT_SHA"] == "abc123"  # the DAG bundle version of the run
    assert env["IMAGE_TAG"] == "local"  # no image in the local runtime
    assert result["previous_file_existed"] is False
    assert not Path(result["path"]).exists()  # the try's folder is removed after success


def test_output_is_streamed_to_the_task_log(local_env, capfd) -> None:
    make_operator().execute(context())
    logged = capfd.readouterr().out  # Airflow's task logger (structlog) writes here
    assert "fake trainer validate" in logged
    assert "a warning on stderr" in logged


def test_a_non_zero_exit_fails_the_task_with_the_trainers_message(local_env, monkeypatch) -> None:
    from ml_pipeline.local_runtime import TrainerProcessError

    monkeypatch.setenv("FAKE_MODE", "fail")
    op = make_operator()
    with pytest.raises(TrainerProcessError, match=r"exited with code 2(.|\n)*too few rows"):
        op.execute(context())


def test_a_failed_try_still_pushes_what_it_wrote_like_kpo(local_env, monkeypatch) -> None:
    from ml_pipeline.local_runtime import TrainerProcessError

    monkeypatch.setenv("FAKE_MODE", "fail-with-json")
    ctx = context()
    with pytest.raises(TrainerProcessError):
        make_operator().execute(ctx)
    assert ctx["ti"].pushed["return_value"]["command"] == "validate"


def test_each_try_gets_a_fresh_return_file(local_env, monkeypatch) -> None:
    from ml_pipeline.local_runtime import TrainerProcessError

    monkeypatch.setenv("FAKE_MODE", "fail-with-json")
    first = context(try_number=1)
    with pytest.raises(TrainerProcessError):
        make_operator().execute(first)
    monkeypatch.setenv("FAKE_MODE", "ok")
    second = make_operator().execute(context(try_number=2))
    assert second["path"] != first["ti"].pushed["return_value"]["path"]
    assert "try2" in second["path"]
    assert second["previous_file_existed"] is False  # try 1's file is not visible to try 2


@pytest.mark.parametrize(
    ("mode", "message"), [("none", "wrote no JSON"), ("bad-json", "not a JSON object")]
)
def test_a_missing_or_wrong_result_fails(local_env, monkeypatch, mode, message) -> None:
    from ml_pipeline.local_runtime import TrainerProcessError

    monkeypatch.setenv("FAKE_MODE", mode)
    with pytest.raises(TrainerProcessError, match=message):
        make_operator().execute(context())


def test_on_kill_stops_the_whole_process_group(local_env, monkeypatch) -> None:
    pidfile = local_env / "pid"
    monkeypatch.setenv("FAKE_MODE", "sleep")
    monkeypatch.setenv("FAKE_PIDFILE", str(pidfile))
    op = make_operator()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context())
        except BaseException as exc:  # the killed process exits non-zero
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pidfile.read_text())
    op.on_kill()  # what Airflow calls when the task is killed or times out
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors and "exited with code -15" in str(errors[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_mapped_local_task_expands_like_the_pod_task(local_env) -> None:
    from ml_pipeline.local_runtime import LocalTrainerOperator
    from ml_pipeline.pod_tasks import mapped_pod_task

    partial = mapped_pod_task("train_with_hp", "train", profile="a100")
    mapped = partial.expand_kwargs(
        [{"trial_id": "t00", "arguments": ["--lr", "0.1"]}, {"trial_id": "t01", "arguments": []}]
    )
    op = mapped.unmap({"trial_id": "t00", "arguments": ["--lr", "0.1"]})
    assert isinstance(op, LocalTrainerOperator)
    assert op.trial_id == "t00"
    result = op.execute(context(map_index=0))
    assert result["command"] == "train" and result["args"] == ["--lr", "0.1"]
    assert result["env"]["CUDA_VISIBLE_DEVICES"] == "0"  # same env contract as the GPU pod
    assert result["env"]["ML_PLATFORM_PROFILE"] == "a100"
    json.dumps(result)


WORKER = """
import os, sys
from types import SimpleNamespace
import ml_pipeline.local_runtime as local_runtime
from ml_pipeline.pod_tasks import pod_task
if os.environ.get("WITHOUT_SETPRIV"):  # the fallback: prctl in a preexec_fn
    local_runtime._die_with_parent_prefix = lambda: []
from datetime import UTC, datetime
ti = SimpleNamespace(task_id="t", map_index=-1, try_number=1, xcom_push=lambda **k: None)
day = datetime(2024, 1, 1, tzinfo=UTC)
run = SimpleNamespace(dag_id="d", run_id="r", logical_date=day, run_after=day, run_type="manual")
pod_task("validate_data", "validate", []).execute({"ti": ti, "dag_run": run, "params": {}})
"""


@pytest.mark.parametrize("without_setpriv", ["", "1"], ids=["setpriv", "preexec_fn"])
def test_the_trainer_dies_with_a_killed_worker(local_env, without_setpriv: str) -> None:
    """A worker killed with SIGKILL (no on_kill) leaves no trainer behind (Linux), with
    `setpriv --pdeathsig` in front of the command and without it."""
    import signal
    import subprocess

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    pidfile = local_env / "pid"
    env = {
        **os.environ,
        "FAKE_MODE": "sleep",
        "FAKE_PIDFILE": str(pidfile),
        "WITHOUT_SETPRIV": without_setpriv,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    worker = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    trainer = int(pidfile.read_text())
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(trainer, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(trainer, signal.SIGKILL)
    pytest.fail("the trainer outlived its worker")
