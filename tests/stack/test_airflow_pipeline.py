"""The pipeline under a real Airflow 3.3 on the local stack (layer 6 of ARCHITECTURE §6).

One `devstack up --airflow` for the whole module (its own root: MinIO, MLflow, SQLite metadata
DB, api-server, scheduler with the LocalExecutor, dag-processor, triggerer), runs triggered
through the REST API v2 and the `airflow` CLI, the real trainer as local processes:

- invalid Params fail the run in `check_params`, before any sensor waits;
- a run without a logical date and with custom Params defers its S3 sensor into the triggerer,
  misses its (1-minute) deadline — the callback, imported by the triggerer, posts to the
  webhook — then resumes when the producer lands the partition of its day, trains and promotes;
- a UI-style run (logical date "now", not midnight) waits for the producer run of its day;
- a DAG change pushed to a bare git repository reaches the dag-processor through the
  GitDagBundle, configured as the chart's `ci/git-dag-bundle-values.yaml` renders it.

Slow (minutes on a 2-core machine) but bounded: every wait has a generous deadline and names
what it waited for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from devstack.airflow_api import AirflowApi, wait_until
from devstack.paths import repo_root
from devstack.stack import Stack
from devstack.webhook import WebhookSink
from stack_support import clean_environ, run_devstack, stop_everything_under

# Several bounded waits in one test: more room than the suite's 900 s per test on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = repo_root()
TRAINING, PRODUCER = "ml_full_training_pipeline", "data_preprocessing_pipeline"
MODEL, EXPERIMENT = "real-airflow-digits", "real-airflow-pipeline"
SPACE = {"optimizer": ["adam", "sgd"], "lr": [0.003], "batch_size": [64]}
SMALL = {  # real training, kept small: two trials of two epochs on a tiny MLP
    "gpu_profile": "cpu",
    "search_space": SPACE,
    "training": {"epochs": 2, "patience": 0, "hidden_sizes": "32"},
    "min_accuracy": 0.5,
}
RUN_TIMEOUT_S = 900
GIT_DAG = """
import os
import time
from datetime import UTC, datetime

from airflow.sdk import dag, task


@dag(dag_id="git_pushed_dag", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC))
def git_pushed_dag():
    @task
    def first():
        # waits until the test opens its gate (a file), so a run can outlive a push
        gate, deadline = os.environ["GIT_PUSHED_DAG_GATE"], time.monotonic() + 900
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(1)
        return "first"
{more}
git_pushed_dag()
"""
SECOND_TASK = """
    @task
    def second(value):
        return value + " then second"

    second(first())
"""
THIRD_TASK = """
    @task
    def second(value):
        return value + " then second"

    @task
    def third(value):
        return value + " then third"

    third(second(first()))
"""


@dataclass
class RealAirflow:
    root: Path
    stack: Stack
    api: AirflowApi
    webhook: WebhookSink
    git: GitRemote
    gate: Path
    up_output: str

    def messages(self, fragment: str) -> list[str]:
        return [m.get("text", "") for m in self.webhook.received if fragment in m.get("text", "")]


class GitRemote:
    """A bare repository standing in for the remote, and a clone that pushes to it."""

    def __init__(self, where: Path) -> None:
        self.bare, self.clone = where / "remote.git", where / "clone"
        self._git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        self._git("clone", "--quiet", str(self.bare), str(self.clone))
        (self.clone / "dags").mkdir()

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        identity = ["-c", "user.name=ml-platform tests", "-c", "user.email=tests@ml-platform"]
        done = subprocess.run(
            ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def push(self, dag_source: str, message: str) -> str:
        """Commit `dags/git_pushed_dag.py` with this content, push to main; the commit sha."""
        (self.clone / "dags" / "git_pushed_dag.py").write_text(dag_source)
        self._git("add", "dags", cwd=self.clone)
        self._git("commit", "--quiet", "-m", message, cwd=self.clone)
        self._git("push", "--quiet", "origin", "HEAD:main", cwd=self.clone)
        return self._git("rev-parse", "HEAD", cwd=self.clone)


def chart_git_bundle(refresh_seconds: int) -> dict[str, Any]:
    """The GitDagBundle entry exactly as the chart's git-bundle values set it, except a
    shorter refresh interval (the chart's 60 s would make the test wait minutes)."""
    values = yaml.safe_load(
        (REPO / "charts" / "ml-platform" / "ci" / "git-dag-bundle-values.yaml").read_text()
    )
    (bundle,) = values["airflow"]["dagProcessor"]["dagBundleConfigList"]
    return {**bundle, "kwargs": {**bundle["kwargs"], "refresh_interval": refresh_seconds}}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAirflow]:
    work = tmp_path_factory.mktemp("real-airflow")
    root = work / "root"
    git = GitRemote(work)
    git.push(GIT_DAG.format(more="    first()\n"), "a DAG with one task")
    config = json.loads((REPO / "dags" / "ml_pipeline" / "platform_defaults.json").read_text())
    config["model"] = {"name": MODEL, "experiment": EXPERIMENT}
    (work / "platform.json").write_text(json.dumps(config))
    bundle = chart_git_bundle(refresh_seconds=5)
    webhook = WebhookSink("/hooks/real-airflow").start()
    # Settings reach the DAGs (parsed by the dag-processor, run by the scheduler's workers)
    # through the environment of `devstack up`, as a developer's shell would pass them.
    env = clean_environ() | {
        "ML_PLATFORM_CONFIG": str(work / "platform.json"),
        "ML_PIPELINE_DEADLINE_MINUTES": "1",
        "ML_PIPELINE_SENSOR_POKE_SECONDS": "5",
        "ML_PIPELINE_SENSOR_TIMEOUT_SECONDS": str(RUN_TIMEOUT_S),
        "ML_PIPELINE_RETRIES": "1",
        "ML_PIPELINE_RETRY_DELAY_SECONDS": "5",
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK": json.dumps({"conn_type": "http", "host": webhook.url}),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {},
                },
                bundle,
            ]
        ),
        f"AIRFLOW_CONN_{bundle['kwargs']['git_conn_id'].upper()}": json.dumps(
            {"conn_type": "git", "host": str(git.bare)}
        ),
        "GIT_PUSHED_DAG_GATE": str(work / "gate"),
    }
    ports = ["--minio-port", "0", "--minio-console-port", "0", "--mlflow-port", "0"]
    try:
        up = run_devstack(
            "up", "--airflow", "--airflow-port", "0", "--root", str(root), *ports,
            env=env, timeout=900,
        )  # fmt: skip
        assert up.returncode == 0, f"devstack up --airflow failed:\n{up.stdout}\n{up.stderr}"
        stack = Stack(root)
        api = stack.airflow_api()
        api.wait_for_dags(TRAINING, PRODUCER, "git_pushed_dag")  # the project's, the bundle's
        yield RealAirflow(root, stack, api, webhook, git, work / "gate", up.stdout)
        down = run_devstack("down", "--root", str(root))
        assert down.returncode == 0, down.stderr
    finally:
        webhook.stop()
        leftovers = stop_everything_under(root)
    assert leftovers == [], f"processes left after `devstack down`: {leftovers}"


def test_devstack_up_airflow_prints_the_ui_and_its_generated_login(airflow: RealAirflow) -> None:
    login = airflow.stack.airflow_login
    assert f"Airflow UI     {airflow.stack.airflow_url}" in airflow.up_output
    assert f"user {login.username}   password {login.password}" in airflow.up_output
    assert len(login.password) >= 12
    status = run_devstack("status", "--root", str(airflow.root))
    assert status.returncode == 0, status.stdout
    assert sorted(line.split()[0] for line in status.stdout.splitlines()) == [
        "airflow-api-server",
        "airflow-dag-processor",
        "airflow-scheduler",
        "airflow-triggerer",
        "minio",
        "mlflow",
    ]
    health = airflow.api.get("monitor/health")
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert airflow.api.get("importErrors")["total_entries"] == 0


def test_params_the_form_rejects_are_refused_at_trigger_time(airflow: RealAirflow) -> None:
    answer = airflow.api.request(
        "POST",
        f"dags/{TRAINING}/dagRuns",
        json={"logical_date": None, "conf": {"training": {"epochs": 0}}},
    )
    assert answer.status_code == 400, answer.text
    assert "epochs" in answer.text


def test_invalid_params_from_the_cli_fail_the_run_before_any_sensor_waits(
    airflow: RealAirflow,
) -> None:
    """`airflow dags trigger --conf …` without `-l`: custom Params, no logical date."""
    conf = {**SMALL, "min_successful_trials": 5}
    env = clean_environ() | airflow.stack.env()
    triggered = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "dags", "trigger", TRAINING,
         "--conf", json.dumps(conf), "--output", "json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert triggered.returncode == 0, triggered.stderr
    (printed,) = [line for line in triggered.stdout.splitlines() if line.startswith("[{")]
    (run,) = json.loads(printed)  # the CLI prints every value as a string
    run = airflow.api.run(TRAINING, run["dag_run_id"])
    assert run["logical_date"] is None and run["conf"] == conf
    done = airflow.api.wait_for_run(TRAINING, run["dag_run_id"], timeout=RUN_TIMEOUT_S)
    assert done["state"] == "failed"
    states = airflow.api.task_states(TRAINING, run["dag_run_id"])
    assert states[("check_params", -1)] == "failed"
    assert states[("wait_for_training_data", -1)] == "upstream_failed"
    assert states[("wait_for_preprocessing", -1)] == "upstream_failed"
    log = airflow.api.task_log(TRAINING, run["dag_run_id"], "check_params")
    assert "min_successful_trials is 5 but the search plans only 2 trials" in log
    (failed,) = wait_until(
        "the failure notification (DAG callback, run by the dag-processor)",
        lambda: airflow.messages(run["dag_run_id"]),
        timeout=300,
    )
    assert ":red_circle:" in failed
    assert "nothing was deployed by this run; the champion is unchanged" in failed


def test_a_run_without_logical_date_defers_misses_its_deadline_then_trains_and_promotes(
    airflow: RealAirflow,
) -> None:
    api = airflow.api
    run = api.trigger(TRAINING, logical_date=None, conf=SMALL)
    run_id = run["dag_run_id"]
    assert run["logical_date"] is None
    day = datetime.fromisoformat(run["run_after"]).astimezone(UTC).date().isoformat()

    # No partition yet: the S3 sensor hands its wait to the triggerer.
    seen: list[str | None] = []

    def sensor_deferred() -> bool:
        seen.append(api.task_states(TRAINING, run_id).get(("wait_for_training_data", -1)))
        return seen[-1] == "deferred"

    wait_until("wait_for_training_data to defer", sensor_deferred, timeout=RUN_TIMEOUT_S)
    sensor = api.task_instance(TRAINING, run_id, "wait_for_training_data")
    assert sensor["rendered_fields"]["bucket_key"] == f"daily/{day}/features.parquet"

    # The 1-minute deadline passes while the sensor waits: the triggerer imports and runs
    # ml_pipeline.notify.deadline_missed, which posts to the webhook.
    (late,) = wait_until(
        "the deadline-missed message", lambda: airflow.messages(run_id), timeout=RUN_TIMEOUT_S
    )
    assert ":hourglass:" in late and "1 min after it was queued" in late

    # The producer lands the partition of that day (its run at 00:00 UTC, as its schedule
    # would); the deferred sensor resumes and the run goes on.
    producer = api.trigger(PRODUCER, logical_date=f"{day}T00:00:00Z")
    assert api.wait_for_run(PRODUCER, producer["dag_run_id"], RUN_TIMEOUT_S)["state"] == "success"
    done = api.wait_for_run(TRAINING, run_id, RUN_TIMEOUT_S)
    states = api.task_states(TRAINING, run_id)
    assert done["state"] == "success", states
    assert states[("wait_for_training_data", -1)] == "success"
    assert "deferred" in seen  # the state history as observed: deferred, then success
    assert states[("deploy_model", -1)] == "success"

    deployed = airflow.stack.mlflow_uri
    version = _mlflow(deployed, "registered-models/alias", name=MODEL, alias="champion")
    tags = {t["key"]: t["value"] for t in version["model_version"].get("tags", [])}
    assert tags["deployed_by"] == f"admin via {TRAINING}/{run_id}"  # the audit trail
    assert tags["deployed_image_tag"] == "local"
    assert any(":rocket:" in m for m in airflow.messages(day))


def test_a_ui_style_run_waits_for_the_producer_run_of_its_day(airflow: RealAirflow) -> None:
    """The UI's Trigger button: logical date "now" (here a fixed afternoon instant)."""
    api = airflow.api
    producer = api.trigger(PRODUCER, logical_date="2025-05-02T00:00:00Z")
    assert api.wait_for_run(PRODUCER, producer["dag_run_id"], RUN_TIMEOUT_S)["state"] == "success"
    conf = {
        **SMALL,
        "search_space": {**SPACE, "optimizer": ["adam"]},
        "training": {"epochs": 1, "patience": 0, "hidden_sizes": "32"},
        "min_accuracy": 0.99,
    }
    run = api.trigger(TRAINING, logical_date="2025-05-02T14:23:05Z", conf=conf)
    done = api.wait_for_run(TRAINING, run["dag_run_id"], RUN_TIMEOUT_S)
    states = api.task_states(TRAINING, run["dag_run_id"])
    assert done["state"] == "success", states
    assert states[("wait_for_preprocessing", -1)] == "success"
    validate = api.task_instance(TRAINING, run["dag_run_id"], "data_preparation.validate_data")
    assert "s3://datasets/daily/2025-05-02/features.parquet" in str(validate["rendered_fields"])


def test_a_git_push_reaches_the_dag_processor_through_the_git_dag_bundle(
    airflow: RealAirflow,
) -> None:
    api = airflow.api

    def parsed_version(sha: str) -> dict[str, Any] | None:
        """The DAG version the dag-processor serialized from commit `sha`, once it has."""
        versions = api.get("dags/git_pushed_dag/dagVersions")["dag_versions"]
        return next((v for v in versions if v["bundle_version"] == sha), None)

    assert api.get("dags/git_pushed_dag/details")["bundle_name"] == "ml-platform"
    sha = airflow.git.push(GIT_DAG.format(more=SECOND_TASK), "a second task")
    pushed_at = time.monotonic()
    wait_until(f"commit {sha[:8]} to be parsed", lambda: parsed_version(sha), timeout=300)
    print(f"push-to-parsed: {time.monotonic() - pushed_at:.1f}s")
    tasks = {t["task_id"] for t in api.get("dags/git_pushed_dag/tasks")["tasks"]}
    assert tasks == {"first", "second"}

    # A run pinned to this commit, held in its first task while a broken commit is pushed.
    run_id = api.trigger("git_pushed_dag")["dag_run_id"]
    wait_until(
        "the pinned run's first task to run",
        lambda: api.task_states("git_pushed_dag", run_id).get(("first", -1)) == "running",
        timeout=600,
    )
    broken = airflow.git.push(GIT_DAG.format(more=SECOND_TASK) + "\ndef broken(:\n", "oops")
    errors = wait_until(
        f"the import error of commit {broken[:8]}",
        lambda: [
            e
            for e in api.get("importErrors")["import_errors"]
            if e["filename"].endswith("git_pushed_dag.py")
        ],
        timeout=300,
    )
    assert errors[0]["bundle_name"] == "ml-platform"
    assert "SyntaxError" in errors[0]["stack_trace"]
    # Airflow 3.3 marks the DAG of a file that no longer imports stale: no new runs, and the
    # scheduler leaves its runs in flight alone (it schedules no further task of them) ...
    assert api.get("dags/git_pushed_dag/details")["is_stale"] is True
    airflow.gate.touch()
    # ... until a fix is pushed: then the run in flight goes on with the code of the commit
    # it is pinned to (two tasks), while the fixed DAG has a third.
    fixed = airflow.git.push(GIT_DAG.format(more=THIRD_TASK), "fix, and a third task")
    wait_until(f"commit {fixed[:8]} to be parsed", lambda: parsed_version(fixed), timeout=300)
    assert api.get("dags/git_pushed_dag/details")["is_stale"] is False
    done = api.wait_for_run("git_pushed_dag", run_id, RUN_TIMEOUT_S)
    assert done["state"] == "success"
    assert done["bundle_version"] == sha
    assert api.task_states("git_pushed_dag", run_id) == {
        ("first", -1): "success",
        ("second", -1): "success",
    }
    tasks = {t["task_id"] for t in api.get("dags/git_pushed_dag/tasks")["tasks"]}
    assert tasks == {"first", "second", "third"}


def _mlflow(uri: str, path: str, **query: str) -> dict[str, Any]:
    import requests

    answer = requests.get(f"{uri}/api/2.0/mlflow/{path}", params=query, timeout=30)
    answer.raise_for_status()
    return answer.json()
