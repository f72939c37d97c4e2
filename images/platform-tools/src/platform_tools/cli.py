"""`platform-tools <command>`: the ml-platform chart's bucket hook and helm test checks.

Each command writes one line per check to stdout and exits 0; on a failure it writes the
reason (and the fix) to stderr and exits 1 (2 for bad arguments, from argparse).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from platform_tools import __version__, buckets, services
from platform_tools.errors import CheckFailed

ENVIRONMENT = """\
environment:
  AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   object store
  MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD   MLflow basic auth (check-mlflow)
"""


def _ensure_buckets(args: argparse.Namespace) -> list[str]:
    return buckets.ensure_buckets(buckets.s3_client(), args.buckets, args.wait_seconds)


def _check_buckets(args: argparse.Namespace) -> list[str]:
    return buckets.check_buckets(buckets.s3_client(), args.buckets)


def _check_mlflow(args: argparse.Namespace) -> list[str]:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    return services.check_mlflow(args.tracking_uri, (user, password) if user and password else None)


def _check_airflow(args: argparse.Namespace) -> list[str]:
    return services.check_airflow(args.url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platform-tools",
        description=__doc__.split("\n\n")[0],
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="<command>", required=True)

    p = commands.add_parser("ensure-buckets", help="create the buckets that do not exist yet")
    p.add_argument("buckets", nargs="+", metavar="BUCKET", help="bucket names")
    p.add_argument(
        "--wait-seconds",
        type=float,
        default=600.0,
        help="how long to wait for the object store to answer (default %(default)s)",
    )
    p.set_defaults(run=_ensure_buckets)

    p = commands.add_parser("check-buckets", help="every bucket exists (helm test)")
    p.add_argument("buckets", nargs="+", metavar="BUCKET", help="bucket names")
    p.set_defaults(run=_check_buckets)

    p = commands.add_parser(
        "check-mlflow",
        help="MLflow answers /health and its API (with basic auth when credentials are set)",
    )
    p.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        required="MLFLOW_TRACKING_URI" not in os.environ,
        help="MLflow server URL (default $MLFLOW_TRACKING_URI)",
    )
    p.set_defaults(run=_check_mlflow)

    p = commands.add_parser("check-airflow", help="every Airflow component reports healthy")
    p.add_argument("--url", required=True, help="Airflow API server URL, e.g. http://host:8080")
    p.set_defaults(run=_check_airflow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        lines = args.run(args)
    except CheckFailed as exc:
        sys.stderr.write(f"platform-tools: {exc}\n")
        return 1
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0
