"""Cost of the `local` runtime.

1. Per pod task: `LocalTrainerOperator.execute` running a trainer command that does no work
   (`bench/_noop_trainer.py`: imports torch and mlflow, writes one XCom object) ÷ a bare
   `python -c "import torch, mlflow"`, both timed from the same process, interleaved.
   What the runtime adds: building the environment, the per-try folder, streaming the
   output, reading `return.json` back. Goal <= 1.5.
2. A sweep whose trials compute >= 30 s each, run end to end on the local stack with
   `dag.test()`: training-DAG wall time ÷ the time its trainer processes ran (`dag.test()`
   runs one task at a time, so every pod task is on the critical path). Goal <= 1.15.
   Needs the MinIO and MLflow binaries (`make setup`); takes ~3 minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Measurement, run_python_json

NAME = "local_runtime"
REPO = Path(__file__).resolve().parents[1]
RUNS = 5
POD_TASKS = (
    "data_preparation.validate_data",
    "data_preparation.preprocess_data",
    "hyperparameter_tuning.train_with_hp",
    "evaluate_model",
    "deploy_model",
)

OVERHEAD_WORKER = r"""
import json, subprocess, sys, time
from datetime import UTC, datetime
from types import SimpleNamespace
from ml_pipeline.pod_tasks import pod_task

runs = int(sys.argv[1])
op = pod_task("validate_data", "validate", ["--input", "s3://datasets/x.parquet"])
ti = SimpleNamespace(task_id="validate_data", map_index=-1, try_number=1, xcom_push=lambda **k: None)
day = datetime(2024, 1, 1, tzinfo=UTC)
run = SimpleNamespace(dag_id="d", run_id="r", logical_date=day, run_after=day, run_type="manual")
context = {"ti": ti, "dag_run": run, "params": {}}
ours, bare = [], []
for i in range(runs + 1):
    t = time.perf_counter()
    result = op.execute(context)
    a = time.perf_counter() - t
    assert result["ok"] is True
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, mlflow"], check=True)
    b = time.perf_counter() - t
    if i:  # the first round warms the page cache for both
        ours.append(a)
        bare.append(b)
print(json.dumps({"ours": ours, "bare": bare}))
"""


def per_task_overhead() -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="bench-local-runtime-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "PYTHONPATH": str(REPO / "dags"),
            "ML_PIPELINE_RUNTIME": "local",
            "ML_PIPELINE_LOCAL_COMMAND": f"{sys.executable} {REPO / 'bench' / '_noop_trainer.py'}",
            "ML_PIPELINE_LOCAL_WORKDIR": home,
        }
        data = run_python_json(OVERHEAD_WORKER, str(RUNS), env=env, timeout=900)
    ours, bare = statistics.median(data["ours"]), statistics.median(data["bare"])
    return [
        Measurement(NAME, "pod_task_local", ours, "s", notes="no-op trainer command", extra=data),
        Measurement(NAME, "bare_import_torch_mlflow", bare, "s"),
        Measurement(NAME, "pod_task_overhead_ratio", ours / bare, "x", goal="<= 1.5"),
    ]


def long_sweep() -> list[Measurement]:
    from devstack.stack import Stack

    work = Path(tempfile.mkdtemp(prefix="bench-long-sweep-"))
    stack = Stack(work / "stack", minio_port=None, minio_console_port=None, mlflow_port=None)
    stack.up()
    try:
        env = {
            **os.environ,
            **stack.env(),
            "PYTHONPATH": str(REPO / "dags"),
            "ML_PIPELINE_SENSOR_POKE_SECONDS": "2",
        }
        env.pop("ML_PLATFORM_CONFIG", None)
        training = {
            "gpu_profile": "cpu",
            "search_space": {"optimizer": ["adam", "adamw"], "lr": [0.003], "batch_size": [64]},
            "training": {"hidden_sizes": "512,512", "epochs": 16, "patience": 0},
        }
        plan = [
            {
                "dag_id": "data_preprocessing_pipeline",
                "date": "2024-09-01",
                "conf": {"rows": 30000},
            },
            {"dag_id": "ml_full_training_pipeline", "date": "2024-09-01", "conf": training},
        ]
        (work / "plan.json").write_text(json.dumps(plan))
        subprocess.run(
            [
                sys.executable, "-m", "devstack.local_run",
                "--plan", str(work / "plan.json"), "--results", str(work / "results.json"),
                "--log-file", str(work / "tasks.log"),
            ],
            env=env, cwd=REPO, check=True, timeout=1800,
        )  # fmt: skip
        runs = json.loads((work / "results.json").read_text())
    finally:
        stack.down()
    run = runs[-1]
    assert run["state"] == "success", f"training run {run['state']}; see {work / 'tasks.log'}"
    compute = sum(t["duration_s"] or 0 for t in run["tasks"] if t["task_id"] in POD_TASKS)
    trials = [
        t["duration_s"]
        for t in run["tasks"]
        if t["task_id"] == "hyperparameter_tuning.train_with_hp"
    ]
    wall = run["duration_s"]
    return [
        Measurement(
            NAME, "sweep_wall", wall, "s", notes=f"{len(trials)} trials", extra={"trials_s": trials}
        ),
        Measurement(NAME, "sweep_pod_task_time", compute, "s", notes="sum of pod-task durations"),
        Measurement(NAME, "sweep_min_trial", min(trials), "s", goal=">= 30 (precondition)"),
        Measurement(NAME, "sweep_wall_over_compute", wall / compute, "x", goal="<= 1.15"),
    ]


def run() -> list[Measurement]:
    return [*per_task_overhead(), *long_sweep()]


if __name__ == "__main__":
    from bench.harness import format_table

    print(format_table(run()))
