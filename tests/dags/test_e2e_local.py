"""End to end, locally: real Airflow (`dag.test()`), real MinIO + MLflow (the `stack`
fixture), the real trainer (torch) as local processes — happy path, skip path and faults.

The runs share one DAG-parse process per plan (`python -m devstack.local_run`) to pay
Airflow's start-up once, and one registered model of their own. Faults are injected by
`fault_wrapper.py` standing in for `python -m ml_trainer` (it runs the real trainer unless
told otherwise). Notifications go to a Slack-compatible webhook served on loopback here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dags_support import DAGS, REPO
from devstack.webhook import WebhookSink

pytestmark = [pytest.mark.slow, pytest.mark.stack]

MODEL = "e2e-dags-digits"
EXPERIMENT = "e2e-dags-pipeline"
D1, D2, D3, D4 = "2031-05-01", "2031-05-02", "2031-05-03", "2031-05-04"
WRAPPER = Path(__file__).with_name("fault_wrapper.py")
SPACE = {"optimizer": ["adam", "sgd"], "lr": [0.003], "batch_size": [64]}
SMALL = {  # tiny but real training: ~1 s of compute per trial on a laptop CPU
    "gpu_profile": "cpu",
    "search_space": SPACE,
    "training": {"epochs": 3, "patience": 0, "hidden_sizes": "64"},
    "min_improvement": 0.005,
}
FAIL_SGD = {"fail": [{"command": "train", "match": "--optimizer sgd", "exit": 3}]}
FAIL_ALL = {"fail": [{"command": "train", "match": "", "exit": 3}]}
KILL_SGD_ONCE = {
    "kill_after_checkpoint": [{"command": "train", "match": "--optimizer sgd", "times": 1}]
}
MLFLOW_DOWN_AT_EVALUATE = {
    "env": [
        {
            "command": "evaluate",
            "match": "",
            "set": {
                "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",  # nothing listens on port 9
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
            },
        }
    ]
}


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with WebhookSink("/hooks/e2e") as sink:
        yield sink.url, sink.received


@dataclass
class World:
    runs: dict[str, dict[str, Any]]
    notifications: list[dict[str, Any]]
    tracking_uri: str
    seconds: float
    logs: Path
    s3: Any
    notes: list[str] = field(default_factory=list)

    def tasks(self, label: str) -> dict[tuple[str, int], dict[str, Any]]:
        return {(t["task_id"], t["map_index"]): t for t in self.runs[label]["tasks"]}

    def state(self, label: str, task_id: str, map_index: int = -1) -> str | None:
        task = self.tasks(label).get((task_id, map_index))
        return task["state"] if task else None

    def xcom(self, label: str, task_id: str) -> Any:
        return self.runs[label]["xcom"].get(task_id)

    def champion(self) -> str | None:
        return _mlflow_get(
            self.tracking_uri,
            "registered-models/alias",
            name=MODEL,
            alias="champion",
        )["model_version"]["version"]

    def version_tags(self, version: str) -> dict[str, str]:
        found = _mlflow_get(self.tracking_uri, "model-versions/get", name=MODEL, version=version)
        return {t["key"]: t["value"] for t in found["model_version"].get("tags", [])}

    def versions(self) -> list[str]:
        found = _mlflow_get(self.tracking_uri, "model-versions/search", filter=f"name='{MODEL}'")
        return sorted(v["version"] for v in found.get("model_versions", []))

    def texts_about(self, date: str) -> list[str]:
        return [n["text"] for n in self.notifications if date in n["text"]]


def _mlflow_get(uri: str, path: str, **query: str) -> dict[str, Any]:
    url = f"{uri}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _run_plan(env: dict[str, str], plan: list[dict[str, Any]], work: Path, name: str) -> list[dict]:
    plan_path, results = work / f"{name}-plan.json", work / f"{name}-results.json"
    plan_path.write_text(json.dumps(plan))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack.local_run",
            "--plan",
            str(plan_path),
            "--results",
            str(results),
            "--log-file",
            str(work / f"{name}.log"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(out.stdout, out.stderr[-3000:])
    assert results.is_file(), f"local_run wrote no results (exit {out.returncode}); see {work}"
    done = json.loads(results.read_text())
    assert len(done) == len(plan), f"plan {name} stopped early; log: {work / (name + '.log')}"
    return done


@pytest.fixture(scope="module")
def world(stack, webhook, tmp_path_factory) -> World:
    work = tmp_path_factory.mktemp("e2e-dags")
    url, received = webhook
    config = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())
    config["model"] = {"name": MODEL, "experiment": EXPERIMENT}
    (work / "platform.json").write_text(json.dumps(config))
    env = {
        **stack.env(),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(work)),
        "PYTHONPATH": str(DAGS),
        "ML_PIPELINE_RUNTIME": "local",
        "ML_PLATFORM_CONFIG": str(work / "platform.json"),
        "ML_PIPELINE_RETRIES": "1",
        "ML_PIPELINE_RETRY_DELAY_SECONDS": "1",
        "ML_PIPELINE_SENSOR_POKE_SECONDS": "2",
        "ML_PIPELINE_SENSOR_TIMEOUT_SECONDS": "6",
        "ML_PIPELINE_LOCAL_COMMAND": f"{sys.executable} {WRAPPER}",
        "ML_PIPELINE_LOCAL_WORKDIR": str(work / "tries"),
        "FAULTS_STATE_DIR": str(work / "fault-state"),
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK": json.dumps({"conn_type": "http", "host": url}),
    }
    (work / "tries").mkdir()

    def training(date: str, faults: dict | None = None, **conf: Any) -> dict[str, Any]:
        return {
            "dag_id": "ml_full_training_pipeline",
            "date": date,
            "conf": {**SMALL, **conf},
            "env": {"FAULTS": json.dumps(faults or {})},
        }

    def producer(date: str, **conf: Any) -> dict[str, Any]:
        return {"dag_id": "data_preprocessing_pipeline", "date": date, "conf": conf}

    labels_a = ["up1", "happy", "again", "up2", "drifted", "all_fail", "mlflow_down", "up3"]
    plan_a = [
        producer(D1),
        training(D1, KILL_SGD_ONCE),  # first champion; sgd killed once, resumes on retry
        training(D1),  # the same date again: idempotent
        producer(D2, drift=0.8),
        training(D2, FAIL_SGD),  # worse model -> skip; one trial fails for good
        # every trial fails; 16 of them, so the plan (~10 KB) goes to the object-store XCom
        training(
            D2,
            FAIL_ALL,
            search_space={**SPACE, "lr": [0.001, 0.002, 0.003, 0.004], "batch_size": [32, 64]},
        ),
        training(D1, MLFLOW_DOWN_AT_EVALUATE, search_space={**SPACE, "optimizer": ["adam"]}),
        producer(D3),
    ]
    started = time.monotonic()
    runs = dict(zip(labels_a, _run_plan(env, plan_a, work, "a"), strict=True))
    # D3's partition landed fine, then got corrupted before the training run read it.
    stack.s3_client().put_object(
        Bucket="datasets", Key=f"daily/{D3}/features.parquet", Body=b"PAR1 not really parquet"
    )
    plan_b = [training(D3), training(D4)]  # D4: no producer run, no partition
    runs.update(zip(["corrupt", "missing"], _run_plan(env, plan_b, work, "b"), strict=True))
    # A worse model promoted by hand (the drifted day's best trial), then the rollback DAG.
    worse = runs["drifted"]["xcom"]["hyperparameter_tuning.select_best_model"]["run_id"]
    subprocess.run(
        [sys.executable, "-m", "ml_trainer", "deploy", "--run-id", worse, "--model-name", MODEL,
         "--data-path", f"s3://processed/{D2}/", "--reason", "promoted by hand"],
        env=env | {"XCOM_RETURN_PATH": str(work / "by-hand.json")},
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    rollback = {
        "dag_id": "ml_model_rollback",
        "date": D4,
        "conf": {"model": MODEL, "reason": "the hand-promoted model is worse"},
    }
    runs.update(zip(["rollback"], _run_plan(env, [rollback], work, "c"), strict=True))
    return World(
        runs,
        received,
        stack.env()["MLFLOW_TRACKING_URI"],
        time.monotonic() - started,
        work,
        stack.s3_client(),
    )


def test_happy_path_deploys_the_first_champion(world: World) -> None:
    assert world.runs["up1"]["state"] == "success"
    assert world.runs["happy"]["state"] == "success"
    assert world.state("happy", "deploy_model") == "success"
    assert world.state("happy", "skip_deployment") == "skipped"
    summary = world.xcom("happy", "send_notification")
    assert summary["decision"] == "deploy"
    assert summary["champion_version"] == "1"
    assert summary["baseline_accuracy"] == 0.0  # no champion before
    assert summary["candidate_accuracy"] >= 0.9
    assert summary["mlflow_model_url"].endswith(f"/#/models/{MODEL}/versions/1")
    assert "/#/experiments/" in summary["mlflow_run_url"]
    evaluation = world.xcom("happy", "evaluate_model")  # multiple_outputs: the whole dict too
    assert evaluation["should_deploy"] is True
    assert any(":rocket:" in t and "deploy" in t for t in world.texts_about(D1))


def test_a_transient_failure_retries_with_cleared_xcom_and_resumes_from_checkpoint(
    world: World,
) -> None:
    trials = world.xcom("happy", "generate_hyperparams")
    sgd = next(i for i, trial in enumerate(trials) if "-sgd-" in trial["trial_id"])
    task = world.tasks("happy")[("hyperparameter_tuning.train_with_hp", sgd)]
    assert task["state"] == "success"
    assert task["try_number"] == 2  # try 1 was killed after its first checkpoint
    result = world.xcom("happy", "hyperparameter_tuning.train_with_hp")[sgd]
    assert "stale" not in result  # the killed try's return.json was pushed, then cleared
    assert result["resumed_from_epoch"] >= 1
    assert result["epochs_run"] == 3


def test_the_same_date_twice_is_idempotent(world: World) -> None:
    first, again = world.runs["happy"], world.runs["again"]
    assert again["state"] == "success"
    assert (
        again["xcom"]["data_preparation.preprocess_data"]["data_hash"]
        == (first["xcom"]["data_preparation.preprocess_data"]["data_hash"])
    )
    # same data, same seed -> the same model (the uninterrupted adam trial; sgd was resumed)
    first_adam = first["xcom"]["hyperparameter_tuning.train_with_hp"][0]
    again_adam = again["xcom"]["hyperparameter_tuning.train_with_hp"][0]
    assert first_adam["trial_id"] == again_adam["trial_id"]
    assert first_adam["accuracy"] == again_adam["accuracy"]
    summary = world.xcom("again", "send_notification")
    assert summary["decision"] == "skip"
    assert summary["improvement"] == 0.0
    assert world.state("again", "deploy_model") == "skipped"


def test_a_worse_model_is_not_deployed_and_failed_trials_are_tolerated(world: World) -> None:
    run = world.runs["drifted"]
    assert run["state"] == "success"
    assert world.state("drifted", "skip_deployment") == "success"
    assert world.state("drifted", "deploy_model") == "skipped"
    states = sorted(
        t["state"] for t in run["tasks"] if t["task_id"] == "hyperparameter_tuning.train_with_hp"
    )
    assert states == ["failed", "success"]
    best = world.xcom("drifted", "hyperparameter_tuning.select_best_model")
    assert (best["trials_planned"], best["trials_succeeded"]) == (2, 1)
    assert best["trial_id"].startswith("t00-adam")
    summary = world.xcom("drifted", "send_notification")
    assert summary["decision"] == "skip" and summary["champion_version"] == "1"
    assert summary["candidate_accuracy"] < 0.9


def test_when_every_trial_fails_the_run_fails_clearly_and_nothing_is_deployed(
    world: World,
) -> None:
    assert world.runs["all_fail"]["state"] == "failed"
    assert world.state("all_fail", "hyperparameter_tuning.select_best_model") == "failed"
    for task_id in ("evaluate_model", "deploy_model", "send_notification"):
        assert world.state("all_fail", task_id) == "upstream_failed", task_id
    log = (world.logs / "a.log").read_text()
    assert "only 0 of 16 trials succeeded but min_successful_trials is 1" in log


def test_large_xcom_values_go_to_the_object_store(world: World) -> None:
    """XComObjectStorageBackend: values over the threshold (4 KiB) are objects in `xcom`."""
    plan = world.xcom("all_fail", "generate_hyperparams")
    assert len(plan) == 16 and len(json.dumps(plan)) > 4096
    keys = [
        o["Key"]
        for page in world.s3.get_paginator("list_objects_v2").paginate(Bucket="xcom")
        for o in page.get("Contents", [])
    ]
    assert [k for k in keys if "generate_hyperparams" in k], keys[:20]
    # small values (metrics, paths) stay in the metadata DB
    assert not [k for k in keys if "select_best_model" in k]


def test_mlflow_down_at_evaluate_deploys_nothing(world: World) -> None:
    assert world.runs["mlflow_down"]["state"] == "failed"
    evaluate = world.tasks("mlflow_down")[("evaluate_model", -1)]
    assert (evaluate["state"], evaluate["try_number"]) == ("failed", 2)  # retried, then failed
    assert world.state("mlflow_down", "deploy_model") == "upstream_failed"


def test_a_corrupt_partition_stops_before_training_and_notifies(world: World) -> None:
    assert world.runs["up3"]["state"] == "success"  # it landed whole
    assert world.runs["corrupt"]["state"] == "failed"
    assert world.state("corrupt", "data_preparation.validate_data") == "failed"
    assert world.state("corrupt", "data_preparation.preprocess_data") == "upstream_failed"
    assert world.state("corrupt", "generate_hyperparams") == "upstream_failed"
    assert world.state("corrupt", "send_notification") == "upstream_failed"
    assert not world.xcom("corrupt", "hyperparameter_tuning.train_with_hp")
    texts = world.texts_about(D3)
    assert any(":red_circle:" in t and "failed" in t for t in texts), world.notifications


def test_a_missing_partition_times_out_the_sensor_and_notifies(world: World) -> None:
    assert world.runs["missing"]["state"] == "failed"
    states = {
        world.state("missing", t) for t in ("wait_for_training_data", "wait_for_preprocessing")
    }
    assert "failed" in states
    assert world.state("missing", "data_preparation.validate_data") == "upstream_failed"
    assert any(":red_circle:" in t for t in world.texts_about(D4)), world.notifications


def test_the_rollback_dag_puts_the_previous_champion_back_and_says_so(world: World) -> None:
    run = world.runs["rollback"]
    assert run["state"] == "success", run["tasks"]
    assert world.xcom("rollback", "rollback_model") == {
        "model_name": MODEL,
        "version": "1",
        "alias": "champion",
        "previous_version": "2",
    }
    assert world.xcom("rollback", "notify_rollback")["notified"] is True
    (text,) = [n["text"] for n in world.notifications if ":leftwards_arrow_with_hook:" in n["text"]]
    assert "version 1 (was 2)" in text and "the hand-promoted model is worse" in text


def test_deploys_and_rollbacks_leave_an_audit_trail_in_mlflow(world: World) -> None:
    """DEPLOYED_BY / IMAGE_TAG reach the trainer: MLflow records which run deployed what."""
    happy, rollback = world.runs["happy"]["run_id"], world.runs["rollback"]["run_id"]
    first = world.version_tags("1")
    assert first["deployed_by"].endswith(f" via ml_full_training_pipeline/{happy}")
    assert first["deployed_image_tag"] == "local"
    assert first["restored_by"].endswith(f" via ml_model_rollback/{rollback}")
    assert world.version_tags("2")["rolled_back_by"].endswith(f" via ml_model_rollback/{rollback}")
    best = world.xcom("happy", "hyperparameter_tuning.select_best_model")["run_id"]
    found = _mlflow_get(world.tracking_uri, "runs/get", run_id=best)["run"]["data"]["tags"]
    assert {t["key"]: t["value"] for t in found}["image_tag"] == "local"


def test_the_pipeline_deployed_once_and_the_rollback_undid_the_hand_deploy(world: World) -> None:
    """After every scenario above: the pipeline deployed version 1 once; version 2 (by hand)
    was rolled back, so version 1 is champion again."""
    assert world.champion() == "1"
    assert world.versions() == ["1", "2"]
    print(f"e2e scenarios took {world.seconds:.0f}s")
