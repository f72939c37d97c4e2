"""`trainer <command>`: the command line every pipeline pod runs.

Each command reads its inputs from full `s3://` URIs and the environment, writes exactly one
JSON object to $XCOM_RETURN_PATH (default /airflow/xcom/return.json), and exits 0. On failure
it exits non-zero with one paragraph on stderr naming the problem and the fix (2 for bad
arguments, 1 for everything else). Heavy imports (torch, mlflow) happen inside the commands
that need them, so `validate` and `--help` start fast.

The commands, their flags, defaults and help are declared in `ml_trainer.commands`; this
module only wires them to argparse and the XCom file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ml_trainer import __version__
from ml_trainer.commands import COMMANDS, Command
from ml_trainer.errors import TrainerError
from ml_trainer.options import add_arguments, from_namespace
from ml_trainer.xcom import DEFAULT_XCOM_PATH, XCOM_PATH_ENV, write_xcom

log = logging.getLogger("ml_trainer")

ENVIRONMENT_HELP = f"""\
environment:
  MLFLOW_TRACKING_URI      MLflow server (train, evaluate, deploy, rollback)
  AWS_ENDPOINT_URL         S3 endpoint (MinIO); unset = AWS S3
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION
  {XCOM_PATH_ENV}         where the result JSON goes (default {DEFAULT_XCOM_PATH})
  GIT_SHA, IMAGE_TAG       recorded as tags on the MLflow run
  LOG_LEVEL                DEBUG, INFO (default), WARNING
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainer",
        description=__doc__.split("\n\n")[0],
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="<command>", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name,
            help=command.description.split(".")[0] + ".",
            description=command.description,
            epilog=f"XCom ({XCOM_PATH_ENV}): {command.xcom_keys}\n\n{ENVIRONMENT_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(sub, command.options)
        sub.set_defaults(command=command)
    return parser


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.command
    configure_logging()
    try:
        result = command.run(from_namespace(command.options, args))
        if result is not None:  # `serve` runs until stopped and returns nothing
            write_xcom(result)
    except TrainerError as exc:
        sys.stderr.write(f"trainer {command.name}: {exc.problem} Fix: {exc.fix}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
