"""`devstack up|down|status|env|generate`: the embedded local stack from the command line."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack import generate
from devstack.cluster.cli import add_cluster_parser, run_cluster_command
from devstack.command_line import EXIT_ERROR, EXIT_NOT_RUNNING, RootCommands, err, out
from devstack.errors import DevstackError
from devstack.interrupts import sigterm_as_ctrl_c
from devstack.paths import default_root, repo_root
from devstack.stack import (
    DEFAULT_AIRFLOW_PORT,
    DEFAULT_MINIO_CONSOLE_PORT,
    DEFAULT_MINIO_PORT,
    DEFAULT_MLFLOW_PORT,
    Stack,
)

log = logging.getLogger("devstack")

EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devstack",
        description=(
            "ml-platform's embedded local stack: MinIO (S3), an MLflow tracking server and "
            "an Airflow home, all on 127.0.0.1 with state under one root folder."
        ),
        epilog='typical use: devstack up && eval "$(devstack env)"',
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack_commands = RootCommands(
        commands, "stack", "DEVSTACK_ROOT", default_root(), "<repo>/.local"
    )

    up = stack_commands.add(
        "up",
        "start the stack (reuses a healthy one)",
        (
            "Start MinIO and the MLflow server, create the buckets from "
            "charts/ml-platform/values.yaml and migrate the Airflow DB (once per root). "
            "With --airflow, also a real Airflow (api-server with the UI, scheduler with the "
            "LocalExecutor, dag-processor, triggerer) on the DAGs folder of this checkout. "
            "A taken port is replaced by a free one (0: any free port). Reuses a healthy stack "
            "already running under the root; Ctrl-C stops whatever was started."
        ),
    )
    up.add_argument("--minio-port", type=int, default=DEFAULT_MINIO_PORT, help="S3 API port")
    up.add_argument(
        "--minio-console-port",
        type=int,
        default=DEFAULT_MINIO_CONSOLE_PORT,
        help="MinIO web console port (default: any free port)",
    )
    up.add_argument("--mlflow-port", type=int, default=DEFAULT_MLFLOW_PORT, help="MLflow port")
    up.add_argument(
        "--airflow",
        action="store_true",
        help="also run Airflow: UI + REST API, scheduler, dag-processor, triggerer",
    )
    up.add_argument(
        "--airflow-port",
        type=int,
        default=DEFAULT_AIRFLOW_PORT,
        help=f"Airflow UI / REST API port (default: {DEFAULT_AIRFLOW_PORT})",
    )
    up.add_argument(
        "--schedule",
        action="store_true",
        help="let the scheduler create the DAGs' scheduled (@daily) runs too "
        "(default: only the runs you trigger)",
    )
    up.add_argument(
        "--tools-dir",
        type=Path,
        default=None,
        help="where to look for the minio binary first (default: <repo>/.tools/bin)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds each server may take to become healthy (default: 180)",
    )

    for name, help_text, description in (
        (
            "down",
            "stop the stack",
            "Stop every server of the stack (SIGTERM, then SIGKILL); keeps the data.",
        ),
        (
            "status",
            "show each server and its health",
            "Show each server, its pid, URL and health. Exit 0 when all are healthy, "
            f"{EXIT_NOT_RUNNING} when nothing runs, {EXIT_ERROR} when something is unhealthy.",
        ),
        (
            "env",
            "print `export NAME=value` lines for a shell",
            'Print the environment of the running stack; use: eval "$(devstack env)".',
        ),
    ):
        stack_commands.add(name, help_text, description)

    gen = commands.add_parser(
        "generate",
        help="write the files derived from charts/ml-platform/values.yaml",
        description=(
            "Render the chart's platform ConfigMap with helm into "
            f"{generate.PLATFORM_DEFAULTS} and regenerate the parts of {generate.KIND_CLUSTER} "
            f"and {generate.KIND_VALUES} between their GENERATED markers from it "
            "(`make generate-platform-defaults`)."
        ),
    )
    gen.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the files under this folder instead of the repository (to compare)",
    )
    gen.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    add_cluster_parser(commands)
    return parser


def _cmd_up(args: argparse.Namespace) -> int:
    stack = Stack(
        args.root,
        minio_port=args.minio_port,
        minio_console_port=args.minio_console_port,
        mlflow_port=args.mlflow_port,
        airflow=args.airflow,
        airflow_port=args.airflow_port,
        schedule=args.schedule,
        tools_dir=args.tools_dir,
        start_timeout=args.timeout,
    )
    stack.up()
    out(f"S3 (MinIO)     {stack.s3_endpoint}   console {stack.console_url}")
    out(f"MLflow         {stack.mlflow_uri}")
    out(f"Airflow home   {stack.airflow_home}")
    if stack.has_airflow:
        login = stack.airflow_login
        out(
            f"Airflow UI     {stack.airflow_url}   user {login.username}   password {login.password}"
        )
        out(
            f"Airflow API    {stack.airflow_url}/api/v2   token: POST {stack.airflow_url}/auth/token"
        )
    out(f"state, logs    {stack.root}/stack.json, {stack.root}/logs/")
    out(f'next:          eval "$(devstack env --root {shlex.quote(str(stack.root))})"')
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    Stack(args.root).down()  # logs "nothing running under ..." when there is nothing
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    statuses = Stack(args.root).status()
    if not statuses:
        out(f"no stack running under {args.root}")
        return EXIT_NOT_RUNNING
    for s in statuses:
        health = "healthy" if s.healthy else ("UNHEALTHY" if s.alive else "STOPPED")
        out(f"{s.name:<21} {health:<9} pid {s.pid:<7} {s.url:<24} log {s.log}")
    return 0 if all(s.healthy for s in statuses) else EXIT_ERROR


def _cmd_env(args: argparse.Namespace) -> int:
    for name, value in sorted(Stack(args.root).env().items()):
        out(f"export {name}={shlex.quote(value)}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    root = args.out or repo_root()
    changed = generate.write(generate.generated_files(), root)
    for path in changed:
        out(f"wrote {root / path}")
    if not changed:
        out(f"generated files under {root} are up to date")
    return 0


COMMANDS = {
    "up": _cmd_up,
    "down": _cmd_down,
    "status": _cmd_status,
    "env": _cmd_env,
    "generate": _cmd_generate,
    "cluster": run_cluster_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s", stream=sys.stderr)
    if args.verbose:  # our own details, not every HTTP body the Kubernetes client logs
        logging.getLogger("devstack").setLevel(logging.DEBUG)
    try:
        with sigterm_as_ctrl_c():  # `up` stops what it started before exiting
            return COMMANDS[args.command](args)
    except DevstackError as error:
        err(f"devstack: error: {error}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("devstack: interrupted; everything this command started is stopped")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
