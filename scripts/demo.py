#!/usr/bin/env python3
"""`make demo`: the pipeline's three-day story on the local stack, then a summary table.

Starts the embedded stack (MinIO, MLflow, an Airflow home) under `.local/`, then runs
`data_preprocessing_pipeline` and `ml_full_training_pipeline` with real Airflow
(`dag.test()`), the real trainer (PyTorch) as local processes, and real MLflow, for three
consecutive dates:

  day 1  normal day   small model, first champion (version 1)
  day 2  better day   twice the rows and a bigger model: promoted (version 2, `previous` = 1)
  day 3  drifted day  labels flipped and features shifted: skipped, champion stays 2

The story is deterministic: data comes from the date, training from seeds, and day 2 is
better by design (more data, more capacity, more epochs), not by luck. The registered model
(`model.name` of the platform config) is reset at the start (`--keep-registry` keeps it).
Everything started is stopped at the end, on Ctrl-C and on failure (`devstack.stack.Stack`
as a context manager; a stack that `devstack up` runs is reused and left running);
`--keep-ui` keeps MLflow and the stack's Airflow (UI, scheduler, dag-processor, triggerer, on
the demo's runs) up until Ctrl-C.

`--real` runs the same story through a real Airflow instead of `dag.test()`: the stack's
api-server, scheduler (LocalExecutor), dag-processor and triggerer (`devstack up --airflow`),
each run triggered through the REST API with the date as its logical date; the UI shows the
runs while they happen (its URL and login are printed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.interrupts import sigterm_as_ctrl_c
from devstack.platform_names import PlatformNames, load_platform_names
from devstack.process import ProcessRef, process_started_at, stop_group
from devstack.stack import Stack
from devstack.webhook import WebhookSink

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
DEFAULT_DATES = ("2024-06-01", "2024-06-02", "2024-06-03")


def training_conf(optimizers: list[str], hidden_sizes: str, epochs: int) -> dict[str, Any]:
    """The training DAG's Params of one day: a small CPU search, short training."""
    return {
        "gpu_profile": "cpu",
        "search_space": {"optimizer": optimizers, "lr": [0.003], "batch_size": [64]},
        "training": {"patience": 0, "hidden_sizes": hidden_sizes, "epochs": epochs},
    }


DAYS = (
    {
        "story": "normal day",
        "producer": {"rows": 1797, "drift": 0.0},
        "training": training_conf(["adam", "sgd"], "64", 3),
    },
    {
        "story": "better day",
        "producer": {"rows": 3600, "drift": 0.0},
        "training": training_conf(["adam", "adamw"], "256,256", 8),
    },
    {
        "story": "drifted day",
        "producer": {"rows": 3600, "drift": 0.7},
        "training": training_conf(["adam", "adamw"], "256,256", 8),
    },
)


# ------------------------------------------------------------------------------ output
def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _bar(title: str) -> None:
    say(f"\n== {title} " + "=" * max(0, 74 - len(title)))


@dataclass
class Phases:
    started: float = field(default_factory=time.monotonic)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str):
        began = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - began

    def report(self) -> str:
        total = time.monotonic() - self.started
        rows = [f"  {name:<34} {sec:7.1f}s" for name, sec in self.seconds.items()]
        return "\n".join([*rows, f"  {'total (after make setup)':<34} {total:7.1f}s"])


# ------------------------------------------------------------------------------- MLflow
def reset_registry(tracking_uri: str, model: str) -> bool:
    """Delete the registered model so the story starts without a champion."""
    data = json.dumps({"name": model}).encode()
    request = urllib.request.Request(
        f"{tracking_uri}/api/2.0/mlflow/registered-models/delete",
        data=data,
        method="DELETE",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


# ------------------------------------------------------------------- real Airflow runs
REAL_RUN_TIMEOUT_S = 1800
REAL_SETTINGS = {  # parse-time settings of the demo's Airflow (short waits, quick retries)
    "ML_PIPELINE_RETRY_DELAY_SECONDS": "5",
    "ML_PIPELINE_SENSOR_POKE_SECONDS": "5",
    "ML_PIPELINE_SENSOR_TIMEOUT_SECONDS": "300",
}


def run_plan_real(api: Any, plan: list[dict[str, Any]], phases: Phases) -> list[dict[str, Any]]:
    """Trigger each run through the REST API (logical date = the date at 00:00 UTC, as the
    @daily schedule would) and wait for it; returns what `summarize` reads."""
    results = []
    for item in plan:
        dag_id, date = item["dag_id"], item["date"]
        kind = "producer DAG" if dag_id.startswith("data_") else "training DAG"
        say(f"\n-- {dag_id} {date}")
        with phases.phase(f"{kind} {date}"):
            run = api.trigger(dag_id, logical_date=f"{date}T00:00:00Z", conf=item["conf"])
            done = api.wait_for_run(dag_id, run["dag_run_id"], timeout=REAL_RUN_TIMEOUT_S)
        for (task_id, map_index), state in sorted(
            api.task_states(dag_id, run["dag_run_id"]).items()
        ):
            label = task_id + (f"[{map_index}]" if map_index >= 0 else "")
            say(f"   {label:<52} {state}")
        say(f"   => {dag_id} {date}: {done['state']} ({run['dag_run_id']})")
        summary = api.xcom(dag_id, run["dag_run_id"], "send_notification")
        results.append(
            {
                "dag_id": dag_id,
                "date": date,
                "state": done["state"],
                "xcom": {"send_notification": summary} if isinstance(summary, dict) else {},
            }
        )
    return results


# --------------------------------------------------------------------------------- plan
def build_plan(dates: list[str]) -> list[dict[str, Any]]:
    plan = []
    for date, day in zip(dates, DAYS, strict=True):
        plan.append(
            {"dag_id": "data_preprocessing_pipeline", "date": date, "conf": day["producer"]}
        )
        plan.append({"dag_id": "ml_full_training_pipeline", "date": date, "conf": day["training"]})
    return plan


def run_plan(
    env: dict[str, str], plan: list[dict[str, Any]], work: Path, phases: Phases
) -> list[dict[str, Any]]:
    """Run the plan in one `devstack.local_run` process; stream its progress lines."""
    plan_path, results_path = work / "plan.json", work / "results.json"
    plan_path.write_text(json.dumps(plan, indent=2))
    results_path.unlink(missing_ok=True)
    log_file = work / "airflow-tasks.log"
    log_file.unlink(missing_ok=True)
    say(f"   task logs: {log_file}")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "devstack.local_run",
            "--plan", str(plan_path), "--results", str(results_path), "--log-file", str(log_file),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    current, began = "airflow start-up + DAG parse", time.monotonic()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("> "):
                phases.seconds[current] = phases.seconds.get(current, 0) + time.monotonic() - began
                dag_id, date = line[2:].split()
                kind = "producer DAG" if dag_id.startswith("data_") else "training DAG"
                current, began = f"{kind} {date}", time.monotonic()
                say(f"\n-- {dag_id} {date}")
            elif line.startswith("< "):
                say(f"   => {line[2:]}")
            else:
                say(line)
        proc.wait()
    except BaseException:
        stop_group("the pipeline run", ProcessRef(proc.pid, process_started_at(proc.pid)))
        raise
    phases.seconds[current] = phases.seconds.get(current, 0) + time.monotonic() - began
    if not results_path.is_file():
        raise RuntimeError(
            f"the pipeline run wrote no results (exit {proc.returncode}); see {log_file}"
        )
    return json.loads(results_path.read_text())


# ------------------------------------------------------------------------------ summary
def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2%}"


def summarize(
    results: list[dict[str, Any]], dates: list[str], mlflow_uri: str, names: PlatformNames
) -> tuple[str, bool]:
    header = (
        "date",
        "story",
        "trials",
        "best params",
        "candidate",
        "champion",
        "decision",
        "version",
    )
    rows, ok, urls = [header], True, []
    expected = ("deploy", "deploy", "skip")
    for i, (date, day) in enumerate(zip(dates, DAYS, strict=True)):
        run = next(
            (
                r
                for r in results
                if r["dag_id"] == "ml_full_training_pipeline" and r["date"] == date
            ),
            None,
        )
        summary = (run or {}).get("xcom", {}).get("send_notification") or {}
        if not run or run["state"] != "success" or not summary:
            ok = False
            rows.append(
                (
                    date,
                    day["story"],
                    "-",
                    "-",
                    "-",
                    "-",
                    f"FAILED ({(run or {}).get('state')})",
                    "-",
                )
            )
            continue
        params = summary.get("best_params") or {}
        best = f"{params.get('optimizer')} lr={params.get('lr')} bs={params.get('batch_size')} h={params.get('hidden_sizes')}"
        version = summary.get("champion_version") or "-"
        if summary.get("previous_version"):
            version += f" (previous {summary['previous_version']})"
        decision = summary["decision"]
        ok = ok and decision == expected[i]
        rows.append(
            (
                date,
                day["story"],
                f"{summary.get('trials_succeeded')}/{summary.get('trials_planned')}",
                best,
                _pct(summary.get("candidate_accuracy")),
                _pct(summary.get("baseline_accuracy")),
                decision,
                version,
            )
        )
        urls.append(f"  {date}: run   {summary.get('mlflow_run_url') or '-'}")
        if summary.get("mlflow_model_url"):
            urls.append(f"  {date}: model {summary['mlflow_model_url']}")
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        f"MLflow: {mlflow_uri}  (experiment {names.experiment}, model {names.model_name})",
        *urls,
    ]
    return "\n".join(lines), ok


# --------------------------------------------------------------------------------- main
def tell_story(
    args: argparse.Namespace,
    dates: list[str],
    names: PlatformNames,
    stack: Stack,
    webhook: WebhookSink,
    phases: Phases,
) -> int:
    """Steps 2-3 (and the UI of --keep-ui) on a running stack; 0 when the story held."""
    work = args.root / "demo"
    env = {
        **os.environ,
        **stack.env(),
        **REAL_SETTINGS,
        "PYTHONPATH": str(DAGS),
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK": json.dumps({"conn_type": "http", "host": webhook.url}),
    }
    env.pop("ML_PLATFORM_CONFIG", None)  # the demo runs with the chart's default names
    mlflow_uri = env["MLFLOW_TRACKING_URI"]
    say(
        f"   MLflow {mlflow_uri}   S3 {env['AWS_ENDPOINT_URL']}   Airflow home {env['AIRFLOW_HOME']}"
    )
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if not args.keep_registry and reset_registry(mlflow_uri, names.model_name):
        say(f"   deleted registered model {names.model_name!r} from an earlier demo (fresh story)")

    _bar("2/4 three days: data_preprocessing_pipeline, then ml_full_training_pipeline")
    if args.real:
        api = stack.airflow_api()
        api.put_connection("ml_pipeline_webhook", conn_type="http", host=webhook.url)
        api.wait_for_dags("data_preprocessing_pipeline", "ml_full_training_pipeline")
        login = stack.airflow_login
        say(
            f"   real Airflow: UI {stack.airflow_url} (user {login.username}, "
            f"password {login.password}); each run is triggered through the REST API"
        )
        if stack.reused:
            say("   (Airflow was already running under this root: its own settings apply)")
        results = run_plan_real(api, build_plan(dates), phases)
    else:
        say("   (each line: a finished task try; trainer output is in the task log)")
        results = run_plan(env, build_plan(dates), work, phases)

    _bar("3/4 summary")
    with phases.phase("summary"):
        table, ok = summarize(results, dates, mlflow_uri, names)
    say(table)
    say(f"\nnotifications received on the local Slack-compatible webhook: {len(webhook.received)}")
    for message in webhook.received:
        say("  " + message.get("text", "").splitlines()[0])
    say(
        "\n"
        + (
            "the story held: champion 1 -> 2 (promoted) -> 2 (drift skipped)"
            if ok
            else "the story did NOT hold: read the table and the task logs above"
        )
    )

    if args.keep_ui:
        _bar("UI (Ctrl-C to stop everything)")
        ui = stack
        if not stack.has_airflow:  # the dag.test() story: the stack's Airflow shows its runs
            say("   starting the stack's Airflow (UI, scheduler, dag-processor, triggerer)")
            ui = Stack(args.root, airflow=True, airflow_env=REAL_SETTINGS).up()
        login = ui.airflow_login
        say(f"   Airflow UI  {ui.airflow_url}  (user {login.username}, password {login.password})")
        say(f"   MLflow UI   {mlflow_uri}")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    names = load_platform_names()
    parser = argparse.ArgumentParser(
        prog="scripts/demo.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--keep-ui",
        action="store_true",
        help="keep MLflow and the stack's Airflow (UI on the demo's runs) up until Ctrl-C",
    )
    parser.add_argument(
        "--root", type=Path, default=REPO / ".local", help="stack state folder (default: .local)"
    )
    parser.add_argument(
        "--dates",
        default=",".join(DEFAULT_DATES),
        help="three consecutive dates YYYY-MM-DD,… (default: %(default)s)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="run the story through a real Airflow (scheduler, triggerer, REST API) "
        "instead of dag.test()",
    )
    parser.add_argument(
        "--keep-registry",
        action="store_true",
        help=f"do not delete the registered model {names.model_name!r} first "
        "(the story assumes no champion)",
    )
    args = parser.parse_args(argv)
    dates = [d.strip() for d in args.dates.split(",")]
    if len(dates) != 3:
        parser.error("--dates needs exactly three dates")

    phases = Phases()
    try:
        _bar("1/4 local stack (MinIO, MLflow, Airflow home) in " + str(args.root))
        with contextlib.ExitStack() as running:
            running.enter_context(sigterm_as_ctrl_c())  # SIGTERM stops everything like Ctrl-C
            webhook = running.enter_context(WebhookSink("/services/demo"))
            with phases.phase("stack up"):
                # Stopped on leaving (also on Ctrl-C and failure), unless `devstack up` runs it.
                stack = running.enter_context(
                    Stack(args.root, airflow=args.real, airflow_env=REAL_SETTINGS)
                )
            running.callback(_bar, "4/4 stopping the local stack")
            return tell_story(args, dates, names, stack, webhook, phases)
    except KeyboardInterrupt:
        say("\ninterrupted: everything the demo started is stopped")
        return 130
    finally:
        say("wall time by phase:\n" + phases.report())


if __name__ == "__main__":
    sys.exit(main())
