"""Cost of running the pipeline under a real Airflow on the local stack (`devstack up --airflow`).

1. Per-task overhead: one no-op pod task in the local runtime (`bench/airflow_dags/`: the
   trainer command only imports torch and mlflow, `bench/_noop_trainer.py`), run `RUNS`
   times by the real scheduler (LocalExecutor, triggered through the REST API; queued →
   running → success = the task instance's `end_date - queued_when`) and `RUNS` times by
   `dag.test()` (`devstack.local_run`; the task instance's `end_date - start_date`).
   Reported: both medians and their ratio (information; no goal is set for it).
2. Push-to-parsed latency of the GitDagBundle: a commit pushed to a local bare repository →
   the dag-processor has serialized the DAG of that commit (a DAG version with that
   `bundle_version` in the REST API),
   with the chart's settings (`ci/git-dag-bundle-values.yaml`: refresh every 60 s).

Needs the MinIO binary (`make setup`); takes ~6 minutes on the 2-core reference machine.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml
from devstack.airflow_api import AirflowApi, wait_until

from bench.harness import Measurement

NAME = "real_airflow"
REPO = Path(__file__).resolve().parents[1]
BENCH_DAGS = Path(__file__).with_name("airflow_dags")
DAG_ID = "bench_noop_pod_task"
RUNS = 5
PUSHES = 3
GIT_DAG = """from datetime import UTC, datetime
from airflow.sdk import dag, task
@dag(dag_id="bench_git_dag", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC))
def bench_git_dag():
    @task
    def step():
        return {n}
    step()
bench_git_dag()
"""


def _git(*args: str, cwd: Path | None = None) -> str:
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@ml-platform"]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True)
    done.check_returncode()
    return done.stdout.strip()


def _push(clone: Path, n: int) -> str:
    (clone / "dags" / "bench_git_dag.py").write_text(GIT_DAG.format(n=n))
    _git("add", "dags", cwd=clone)
    _git("commit", "--quiet", "-m", f"change {n}", cwd=clone)
    _git("push", "--quiet", "origin", "HEAD:main", cwd=clone)
    return _git("rev-parse", "HEAD", cwd=clone)


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _real_airflow_task_times(api: AirflowApi) -> list[float]:
    api.wait_for_dags(DAG_ID, "bench_git_dag")
    times = []
    for _ in range(RUNS + 1):  # the first run warms the caches
        run_id = api.trigger(DAG_ID)["dag_run_id"]
        run = api.wait_for_run(DAG_ID, run_id, timeout=900)
        assert run["state"] == "success", f"{DAG_ID} {run_id}: {run['state']}"
        ti = api.task_instance(DAG_ID, run_id, "noop")
        times.append(_seconds(ti["queued_when"], ti["end_date"]))
    return times[1:]


def _dag_test_task_times(env: dict[str, str], work: Path) -> list[float]:
    plan = [{"dag_id": DAG_ID, "date": f"2024-01-{day:02d}"} for day in range(1, RUNS + 2)]
    (work / "plan.json").write_text(json.dumps(plan))
    subprocess.run(
        [
            sys.executable, "-m", "devstack.local_run", "--plan", str(work / "plan.json"),
            "--results", str(work / "results.json"), "--log-file", str(work / "dag-test.log"),
            "--dags-folder", str(BENCH_DAGS),
        ],
        env=env, cwd=REPO, check=True, timeout=1800, capture_output=True,
    )  # fmt: skip
    runs = json.loads((work / "results.json").read_text())
    assert all(r["state"] == "success" for r in runs), [r["state"] for r in runs]
    return [r["tasks"][0]["duration_s"] for r in runs][1:]


def _push_to_parsed(api: AirflowApi, clone: Path) -> list[float]:
    latencies = []
    for n in range(PUSHES):
        sha = _push(clone, n + 1)
        pushed = time.monotonic()
        wait_until(
            f"commit {sha[:8]} parsed",
            lambda sha=sha: (
                sha
                in {
                    v["bundle_version"]
                    for v in api.get("dags/bench_git_dag/dagVersions")["dag_versions"]
                }
            ),
            timeout=900,
            every=0.5,
        )
        latencies.append(time.monotonic() - pushed)
    return latencies


def run() -> list[Measurement]:
    from devstack.stack import Stack

    work = Path(tempfile.mkdtemp(prefix="bench-real-airflow-"))
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(work / "remote.git"))
    _git("clone", "--quiet", str(work / "remote.git"), str(work / "clone"))
    (work / "clone" / "dags").mkdir()
    _push(work / "clone", 0)
    values = yaml.safe_load((REPO / "charts/ml-platform/ci/git-dag-bundle-values.yaml").read_text())
    (git_bundle,) = values["airflow"]["dagProcessor"]["dagBundleConfigList"]
    noop = f"{sys.executable} {REPO / 'bench' / '_noop_trainer.py'}"
    airflow_env = {
        "ML_PIPELINE_LOCAL_COMMAND": noop,
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "bench",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(BENCH_DAGS)},
                },
                git_bundle,
            ]
        ),
        f"AIRFLOW_CONN_{git_bundle['kwargs']['git_conn_id'].upper()}": json.dumps(
            {"conn_type": "git", "host": str(work / "remote.git")}
        ),
    }
    stack = Stack(
        work / "stack",
        minio_port=None,
        minio_console_port=None,
        mlflow_port=None,
        airflow=True,
        airflow_port=None,
        airflow_env=airflow_env,
    )
    stack.up()
    try:
        api = stack.airflow_api()
        real = _real_airflow_task_times(api)
        latencies = _push_to_parsed(api, work / "clone")
        env = {
            **os.environ,
            **stack.env(),
            "PYTHONPATH": str(REPO / "dags"),
            "ML_PIPELINE_LOCAL_COMMAND": noop,
        }
    finally:
        stack.down()
    # After the scheduler is gone: dag.test() runs on the same metadata DB.
    inline = _dag_test_task_times(env, work)
    real_s, inline_s = statistics.median(real), statistics.median(inline)
    refresh = git_bundle["kwargs"]["refresh_interval"]
    return [
        Measurement(
            NAME,
            "pod_task_real_airflow",
            real_s,
            "s",
            notes="queued -> success, no-op local pod task, LocalExecutor",
            extra={"runs_s": real},
        ),
        Measurement(NAME, "pod_task_dag_test", inline_s, "s", extra={"runs_s": inline}),
        Measurement(NAME, "pod_task_real_over_dag_test", real_s / inline_s, "x"),
        Measurement(
            NAME,
            "git_push_to_parsed_median",
            statistics.median(latencies),
            "s",
            notes=f"GitDagBundle refresh_interval {refresh}s (the chart's)",
            extra={"latencies_s": latencies},
        ),
        Measurement(NAME, "git_push_to_parsed_max", max(latencies), "s"),
    ]


if __name__ == "__main__":
    from bench.harness import format_table

    print(format_table(run()))
