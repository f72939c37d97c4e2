"""Sweep scheduling: per-trial orchestration cost of our sweep vs Airflow's own mapping.

Two DAGs, run with `dag.test()` in one process on a fresh SQLite metadata DB, for
N = 4, 16, 64, 256 trivial trials each:

- ours: `generate` → `mapped_pod_task(...).expand_kwargs(…)` in the `local` runtime (one
  process per trial: a `sh` one-liner writing the trainer's XCom) → a reduce with
  `ml_pipeline.selection.select_best` over the lazy sequence — the same pieces as
  `hyperparameter_tuning`;
- airflow: `@task` → `@task.expand(i=…)` (in-process Python) → `@task` reduce.

Per-trial cost = slope of wall time over N (least squares); the ratio of the slopes is the
number held against the goal (<= 1.2), and R² says how linear each is. The first
`dag.test()` in a process pays a one-off start-up, so a warm-up run goes first. Each size runs
`REPEATS` times per DAG, the two DAGs interleaved (their order swapped every round), and the
median wall of each size is fitted: one slow moment of a shared machine moves neither slope.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Measurement, run_python_json

NAME = "sweep_scheduling"
REPO = Path(__file__).resolve().parents[1]
SIZES = (4, 16, 64, 256)
REPEATS = 3  # each size, each DAG; the median wall per size is fitted

OURS_DAG = """
from datetime import datetime
from airflow.sdk import dag, task, Param
from ml_pipeline.selection import select_best
from ml_pipeline.pod_tasks import mapped_pod_task

@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, params={"n": Param(4, type="integer")})
def bench_sweep_ours():
    @task
    def generate(**context):
        n = context["params"]["n"]
        return [{"trial_id": f"t{i}", "arguments": ["--trial-id", f"t{i}"]} for i in range(n)]

    planned = generate()
    trials = mapped_pod_task("train", "train", profile="cpu").expand_kwargs(planned)

    @task(trigger_rule="all_done")
    def reduce(results, planned):
        return select_best(results, [t["trial_id"] for t in planned], 1).trial_id

    reduce(trials.output, planned)

bench_sweep_ours()
"""

AIRFLOW_DAG = """
from datetime import datetime
from airflow.sdk import dag, task, Param

@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, params={"n": Param(4, type="integer")})
def bench_sweep_airflow():
    @task
    def generate(**context):
        return list(range(context["params"]["n"]))

    @task
    def train(i):
        return {"trial_id": f"t{i}", "accuracy": 0.5, "val_accuracy": 0.5, "run_id": "r", "model_uri": "m"}

    @task(trigger_rule="all_done")
    def reduce(results):
        return max(results, key=lambda r: r["val_accuracy"])["trial_id"]

    reduce(train.expand(i=generate()))

bench_sweep_airflow()
"""

# The trainer stand-in: ML_PIPELINE_LOCAL_COMMAND + `train --trial-id tN` as "$@".
TRIVIAL_TRAINER = (
    "sh -c 'for a; do id=$a; done; "
    'printf "{\\"trial_id\\": \\"%s\\", \\"accuracy\\": 0.5, \\"val_accuracy\\": 0.5, \\"run_id\\": \\"r\\", '
    '\\"model_uri\\": \\"m\\"}" "$id" > "$XCOM_RETURN_PATH"\' trainer'
)

WORKER = r"""
import json, statistics, sys, time
from datetime import datetime, timedelta, timezone
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
sizes = [int(n) for n in sys.argv[2].split(",")]
repeats = int(sys.argv[3])
dag_ids = ["bench_sweep_airflow", "bench_sweep_ours"]
day = datetime(2024, 1, 1, tzinfo=timezone.utc)
runs = 0

def timed(dag_id, n):
    global runs
    runs += 1
    t = time.perf_counter()
    dr = bag.dags[dag_id].test(logical_date=day + timedelta(days=runs), run_conf={"n": n})
    assert str(dr.state) in ("success", "DagRunState.SUCCESS"), (dag_id, n, dr.state)
    return time.perf_counter() - t

for dag_id in dag_ids:
    timed(dag_id, 2)  # warm-up
walls = {dag_id: {n: [] for n in sizes} for dag_id in dag_ids}
for r in range(repeats):  # interleaved, the order swapped every round: drift hits both alike
    for dag_id in dag_ids if r % 2 == 0 else dag_ids[::-1]:
        for n in sizes:
            walls[dag_id][n].append(timed(dag_id, n))
print(json.dumps(walls))
"""


def _fit(points: dict[int, float]) -> tuple[float, float, float]:
    """Least squares wall = a + b·N; returns (b, a, R²)."""
    xs, ys = [float(n) for n in points], list(points.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return b, a, 1 - ss_res / ss_tot if ss_tot else 1.0


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        home, dags = Path(tmp) / "airflow", Path(tmp) / "dags"
        dags.mkdir()
        (dags / "bench_sweep_ours.py").write_text(OURS_DAG)
        (dags / "bench_sweep_airflow.py").write_text(AIRFLOW_DAG)
        (Path(tmp) / "tries").mkdir()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "PYTHONPATH": str(REPO / "dags"),
            "ML_PIPELINE_RUNTIME": "local",
            "ML_PIPELINE_LOCAL_COMMAND": TRIVIAL_TRAINER,
            "ML_PIPELINE_LOCAL_WORKDIR": str(Path(tmp) / "tries"),
        }
        for name in ("AIRFLOW__CORE__XCOM_BACKEND", "ML_PLATFORM_CONFIG"):
            env.pop(name, None)
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
        by_dag = run_python_json(
            WORKER, str(dags), ",".join(map(str, SIZES)), str(REPEATS), env=env, timeout=3600
        )
    all_walls = {dag: {int(n): s for n, s in by_n.items()} for dag, by_n in by_dag.items()}
    walls = {
        dag: {n: statistics.median(s) for n, s in by_n.items()} for dag, by_n in all_walls.items()
    }
    slopes, r2 = {}, {}
    measurements = []
    for dag, metric in (
        ("bench_sweep_ours", "per_trial_ours"),
        ("bench_sweep_airflow", "per_trial_airflow_mapped_task"),
    ):
        slopes[dag], _, r2[dag] = _fit(walls[dag])
        notes = f"slope of wall over N; R²={r2[dag]:.4f}"
        extra = {"median_walls_s": walls[dag], "walls_s": all_walls[dag]}
        measurements.append(
            Measurement(NAME, metric, slopes[dag] * 1000, "ms", notes=notes, extra=extra)
        )
    ratio = slopes["bench_sweep_ours"] / slopes["bench_sweep_airflow"]
    return [
        *measurements,
        Measurement(NAME, "per_trial_ratio", ratio, "x", goal="<= 1.2"),
        Measurement(NAME, "linearity_r2_ours", r2["bench_sweep_ours"], "", goal="~1 (linear in N)"),
    ]


if __name__ == "__main__":
    from bench.harness import format_table

    print(format_table(run()))
