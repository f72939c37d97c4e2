"""Run DAGs once, locally, with `dag.test()` — the engine of `make demo` and the e2e tests.

    PYTHONPATH=dags python -m devstack.local_run --plan plan.json --results results.json [--log-file f]

A development tool, not part of the DAGs (git-sync does not ship it): it imports the DAGs'
`ml_pipeline` package from the DAGs folder, which must be on `PYTHONPATH`.

`plan.json` is a list of `{"dag_id": …, "date": "YYYY-MM-DD", "conf": {…}, "env": {…}}`; the
runs go in order, in this one process (Airflow's start-up is paid once). `env` (optional)
is set for that run only — the trainer processes inherit it (e.g. `ML_PIPELINE_LOCAL_COMMAND`
to wrap the trainer); settings read when the DAGs are parsed must be set before the start. Each run's logical date is
the date at 00:00 UTC, as a scheduled `@daily` run would have. The environment must be the
local stack's (`devstack env`: `AIRFLOW_HOME`, the SQLite DB, `AIRFLOW_CONN_AWS_DEFAULT`,
the object-storage XCom backend, `ML_PIPELINE_RUNTIME=local`).

Task logs (verbose) go to `--log-file`; one line per finished task goes to stdout, so a
person sees the pipeline move. `results.json` records per run: the final state, every task
instance (state, tries, map label) and the XComs of the tasks that report results.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from devstack.dag_pods import clear_pipeline_caches, dags_folder

# Tasks whose return value the results file carries (all map indexes).
REPORTED_TASKS = (
    "generate_features",
    "final_validation",
    "data_preparation.validate_data",
    "data_preparation.preprocess_data",
    "generate_hyperparams",
    "hyperparameter_tuning.train_with_hp",
    "hyperparameter_tuning.select_best_model",
    "evaluate_model",
    "deploy_model",
    "skip_deployment",
    "send_notification",
    "rollback_model",
    "notify_rollback",
)


class _Progress:
    """A task-instance listener printing one line per finished try."""

    def __init__(self, out: IO[str], prefix: str = "") -> None:
        self.out = out
        self.prefix = prefix
        self.started: dict[tuple[str, int, int], float] = {}

    def _key(self, ti: Any) -> tuple[str, int, int]:
        return (ti.task_id, getattr(ti, "map_index", -1), getattr(ti, "try_number", 0))

    def _line(self, ti: Any, state: str, detail: str = "") -> None:
        label = ti.task_id
        map_index = getattr(ti, "map_index", -1)
        if map_index is not None and map_index >= 0:
            rendered = getattr(ti, "rendered_map_index", None)
            label += f"[{rendered or map_index}]"
        began = self.started.pop(self._key(ti), None)
        took = f" {time.monotonic() - began:5.1f}s" if began else ""
        now = datetime.now().strftime("%H:%M:%S")
        tries = getattr(ti, "try_number", "?")
        self.out.write(f"  {now} {self.prefix}{label:<52} {state:<8} try {tries}{took}{detail}\n")
        self.out.flush()

    # pluggy hook implementations (registered through the listener manager)
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self.started[self._key(task_instance)] = time.monotonic()

    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._line(task_instance, "success")

    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        text = str(error).strip().splitlines()
        self._line(task_instance, "failed", f"  ({text[0][:90]})" if text else "")

    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._line(task_instance, "skipped")


def _register(progress: _Progress) -> None:
    from airflow.listeners import hookimpl
    from airflow.sdk.listener import get_listener_manager

    for name in (
        "on_task_instance_running",
        "on_task_instance_success",
        "on_task_instance_failed",
        "on_task_instance_skipped",
    ):
        hookimpl(getattr(type(progress), name))
    get_listener_manager().add_listener(progress)


def _xcoms(dag_id: str, run_id: str) -> dict[str, Any]:
    """Return values of the reported tasks: `{task_id: value}` or `{task_id: [values by map index]}`."""
    from airflow.models.xcom import XComModel
    from airflow.sdk.execution_time.xcom import XCom
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found: dict[str, dict[int, Any]] = {}
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.key == "return_value",
                XComModel.task_id.in_(REPORTED_TASKS),
            )
        ).all()
        for row in rows:
            try:
                value = XCom.deserialize_value(row)
            except Exception as exc:  # keep the run's record even if one value is unreadable
                value = {"unreadable": str(exc)}
            found.setdefault(row.task_id, {})[row.map_index] = value
    out: dict[str, Any] = {}
    for task_id, by_index in found.items():
        if list(by_index) == [-1]:
            out[task_id] = by_index[-1]
        else:
            out[task_id] = [by_index[i] for i in sorted(by_index)]
    return out


def _jsonable(value: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def run_one(dag: Any, date: str, conf: dict[str, Any]) -> dict[str, Any]:
    logical_date = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC)
    # Airflow 3.3.2's dag.test() cannot finish a successful run of a DAG with deadline
    # alerts: DagRun.update_state looks the alerts up by the ids the DAG processor gives
    # them, which a DAG serialized in memory does not have ('dict' object has no attribute
    # 'hex'). Nothing checks deadlines without a scheduler anyway, so drop them here.
    dag.deadline = None
    started = time.monotonic()
    dag_run = dag.test(logical_date=logical_date, run_conf=conf or None)
    duration = time.monotonic() - started
    tasks = []
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        tasks.append(
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "label": ti.rendered_map_index,
                "state": str(ti.state.value if hasattr(ti.state, "value") else ti.state),
                "try_number": ti.try_number,
                "duration_s": (
                    round((ti.end_date - ti.start_date).total_seconds(), 3)
                    if ti.start_date and ti.end_date
                    else None
                ),
            }
        )
    state = dag_run.state
    return {
        "dag_id": dag.dag_id,
        "date": date,
        "run_id": dag_run.run_id,
        "state": str(state.value if hasattr(state, "value") else state),
        "duration_s": round(duration, 2),
        "tasks": tasks,
        "xcom": json.loads(json.dumps(_xcoms(dag.dag_id, dag_run.run_id), default=_jsonable)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.local_run", description=__doc__)
    parser.add_argument(
        "--plan", required=True, type=Path, help="JSON list of {dag_id, date, conf}"
    )
    parser.add_argument(
        "--results", required=True, type=Path, help="where to write the results JSON"
    )
    parser.add_argument("--log-file", type=Path, help="task logs (default: stdout, unfiltered)")
    parser.add_argument(
        "--dags-folder",
        type=Path,
        help="default: $AIRFLOW__CORE__DAGS_FOLDER, else the repository's dags/",
    )
    args = parser.parse_args(argv)
    plan = json.loads(args.plan.read_text())

    progress_out: IO[str] = sys.stdout
    if args.log_file:
        # Everything Airflow and the tasks print goes to the log file; progress keeps stdout.
        args.log_file.parent.mkdir(parents=True, exist_ok=True)
        saved = os.dup(1)
        log_fd = os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        progress_out = os.fdopen(saved, "w", buffering=1)

    # dag.test() runs a deferred task's trigger inline and ignores its timeout (a missing
    # partition would wait forever): the sensors reschedule instead. Read at parse time.
    os.environ.update({"ML_PIPELINE_DEFER_SENSORS": "false"})
    folder = args.dags_folder or Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or dags_folder())
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(folder))
    if bag.import_errors:
        progress_out.write(f"DAG import errors: {json.dumps(bag.import_errors, indent=2)}\n")
        return 2
    progress = _Progress(progress_out)
    _register(progress)

    results = []
    exit_code = 0
    for item in plan:
        dag = bag.dags.get(item["dag_id"])
        if dag is None:
            progress_out.write(f"no DAG {item['dag_id']!r} in {folder}\n")
            return 2
        progress.prefix = ""
        progress_out.write(f"> {item['dag_id']} {item['date']}\n")
        saved_env = dict(os.environ)
        os.environ.update({k: str(v) for k, v in (item.get("env") or {}).items()})
        clear_pipeline_caches()
        try:
            result = run_one(dag, item["date"], item.get("conf") or {})
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            clear_pipeline_caches()
        progress_out.write(
            f"< {item['dag_id']} {item['date']}: {result['state']} ({result['duration_s']:.1f}s)\n"
        )
        results.append(result)
        args.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
        if result["state"] != "success":
            exit_code = 1
            if item.get("stop_on_failure"):
                break
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
