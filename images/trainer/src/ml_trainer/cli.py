"""`trainer <command>`: the command line every pipeline pod runs.

Each command reads its inputs from full `s3://` URIs and the environment, writes exactly one
JSON object to $XCOM_RETURN_PATH (default /airflow/xcom/return.json), and exits 0. On failure
it exits non-zero with one paragraph on stderr naming the problem and the fix (2 for bad
arguments, 1 for everything else). Heavy imports (torch, mlflow) happen inside the commands
that need them, so `validate` and `--help` start fast.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ml_trainer import __version__
from ml_trainer.errors import TrainerError
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


# ---------------------------------------------------------------------------- argument types
def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def open_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def iso_date(text: str) -> str:
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {text!r}") from None


def s3_uri(text: str) -> str:
    from ml_trainer.storage import S3Uri

    try:
        S3Uri.parse(text)
    except TrainerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers like 256,256, got {text!r}"
        )
    return sizes


# ---------------------------------------------------------------------------- commands
def _generate_data(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import contract, data
    from ml_trainer.storage import ObjectStore, S3Uri

    frame = data.generate(args.date, rows=args.rows, drift=args.drift, seed=args.seed)
    ObjectStore().write_parquet(S3Uri.parse(args.output), frame)
    return {
        "uri": args.output,
        "rows": len(frame),
        "columns": len(contract.COLUMNS),
        "drift": args.drift,
        "date": args.date,
        "seed": args.seed,
    }


def _validate(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import contract, validate

    thresholds = contract.Thresholds(
        min_rows=args.min_rows,
        min_class_share=args.min_class_share,
        max_duplicate_fraction=args.max_duplicate_fraction,
    )
    return validate.run(args.input, thresholds)


def _preprocess(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import preprocess

    return preprocess.run(
        args.input, args.output_prefix, seed=args.seed, test_fraction=args.test_fraction
    )


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import train
    from ml_trainer.config import Hyperparameters, TrainJob

    hyperparameters = Hyperparameters(
        lr=args.lr,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        epochs=args.epochs,
        hidden_sizes=args.hidden_sizes,
        patience=args.patience,
        seed=args.seed,
        weight_decay=args.weight_decay,
        momentum=args.momentum,
        dropout=args.dropout,
        val_fraction=args.val_fraction,
    )
    job = TrainJob(
        data_path=args.data_path,
        experiment_name=args.experiment_name,
        hyperparameters=hyperparameters,
        trial_id=args.trial_id,
        checkpoint_uri=args.checkpoint_uri,
        date=args.date or "",
        device=args.device,
        precision=args.precision,
        compile=args.compile,
    )
    return train.run(job)


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import evaluate

    return evaluate.run(
        args.run_id,
        args.data_path,
        args.model_name,
        min_accuracy=args.min_accuracy,
        min_improvement=args.min_improvement,
    )


def _deploy(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import registry

    return registry.deploy(
        args.run_id,
        args.model_name,
        args.data_path,
        reason=args.reason,
        deployed_by=args.deployed_by,
        smoke_rows=args.smoke_rows,
    )


def _rollback(args: argparse.Namespace) -> dict[str, Any]:
    from ml_trainer import registry

    return registry.rollback(
        args.model_name,
        reason=args.reason,
        deployed_by=args.deployed_by,
        to_version=args.to_version,
    )


def _serve(args: argparse.Namespace) -> None:
    from ml_trainer import serve

    serve.serve(args.model_name, args.host, args.port, args.poll_seconds)


# ---------------------------------------------------------------------------- parser
def _command(
    subparsers: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], dict[str, Any] | None],
    description: str,
    xcom_keys: str,
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=description.split(".")[0] + ".",
        description=description,
        epilog=f"XCom ({XCOM_PATH_ENV}): {xcom_keys}\n\n{ENVIRONMENT_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler, command=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from ml_trainer.contract import Thresholds

    parser = argparse.ArgumentParser(
        prog="trainer",
        description=__doc__.split("\n\n")[0],
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="<command>", required=True)

    p = _command(
        subparsers,
        "generate-data",
        _generate_data,
        "Write a day's partition from scikit-learn's bundled digits (deterministic from the date).",
        "uri, rows, columns, drift, date, seed",
    )
    p.add_argument(
        "--date", required=True, type=iso_date, help="partition date YYYY-MM-DD (seeds the data)"
    )
    p.add_argument(
        "--output", required=True, type=s3_uri, help="s3://<datasets>/daily/<date>/features.parquet"
    )
    p.add_argument(
        "--drift",
        type=unit_interval,
        default=0.0,
        help="0..1: label noise (up to 50%% flipped) and covariate shift; drifted days train worse models (default 0)",
    )
    p.add_argument(
        "--rows",
        type=positive_int,
        help="rows to write; more than 1797 up-samples with shifted, noisy copies",
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="extra seed mixed with the date (default %(default)s)",
    )

    p = _command(
        subparsers,
        "validate",
        _validate,
        "Check a partition against the data contract; list every violation and exit non-zero on any.\n"
        "Checks: schema (columns, dtypes), nulls/NaN, ranges, minimum rows, class balance, duplicates.\n"
        "The report goes next to the data as validation_report.json (also on failure).",
        "rows, columns, checks_passed (names of the checks), report_uri",
    )
    defaults = Thresholds()
    p.add_argument("--input", required=True, type=s3_uri, help="s3://…/features.parquet")
    p.add_argument(
        "--min-rows",
        type=positive_int,
        default=defaults.min_rows,
        help="minimum rows (default %(default)s)",
    )
    p.add_argument(
        "--min-class-share",
        type=unit_interval,
        default=defaults.min_class_share,
        help="each class needs this share of a balanced split's rows (default %(default)s)",
    )
    p.add_argument(
        "--max-duplicate-fraction",
        type=unit_interval,
        default=defaults.max_duplicate_fraction,
        help="largest tolerated share of duplicate rows (default %(default)s)",
    )

    p = _command(
        subparsers,
        "preprocess",
        _preprocess,
        "Split a partition into train/test (stratified, by seed) and fit standardisation on train only.\n"
        "Writes <prefix>train.parquet, test.parquet (the contract's raw columns) and stats.json.",
        "train_uri, test_uri, stats_uri, train_rows, test_rows, data_hash",
    )
    p.add_argument("--input", required=True, type=s3_uri, help="s3://…/features.parquet")
    p.add_argument("--output-prefix", required=True, type=s3_uri, help="s3://<processed>/<date>/")
    p.add_argument("--seed", type=int, default=42, help="split seed (default %(default)s)")
    p.add_argument(
        "--test-fraction", type=open_fraction, default=0.2, help="test share (default %(default)s)"
    )

    p = _command(
        subparsers,
        "train",
        _train,
        "Train the MLP on a processed split, tracked in MLflow; checkpoints every epoch and resumes.\n"
        "Device: CUDA when present (bf16 autocast, TF32), else CPU (deterministic for a seed).\n"
        "With --checkpoint-uri a rerun resumes from the last epoch in the same MLflow run.",
        "accuracy, f1_score, loss (test split), val_accuracy, val_f1_score, val_loss (validation\n"
        "split, best epoch), best_epoch, run_id, model_uri, params,\n"
        "trial_id, device, epochs_run, resumed_from_epoch, data_hash",
    )
    add_train_arguments(p)

    p = _command(
        subparsers,
        "evaluate",
        _evaluate,
        "Score the candidate run's model and the champion (alias 'champion') on the same test split.\n"
        "should_deploy = candidate >= min_accuracy and candidate - champion >= min_improvement.\n"
        "No champion yet -> baseline 0. Champion unloadable or MLflow down -> exit non-zero.",
        "should_deploy, new_accuracy, new_f1_score, baseline_accuracy, baseline_f1_score, improvement,\n"
        "run_id, model_uri, champion_version, test_rows, reason",
    )
    p.add_argument(
        "--run-id", required=True, help="MLflow run id of the candidate (train's XCom run_id)"
    )
    p.add_argument(
        "--data-path",
        required=True,
        type=s3_uri,
        help="s3://<processed>/<date>/ (its test.parquet)",
    )
    p.add_argument(
        "--model-name", required=True, help="registered model name, e.g. digits-classifier"
    )
    p.add_argument("--min-accuracy", type=unit_interval, default=0.9, help="(default %(default)s)")
    p.add_argument(
        "--min-improvement", type=float, default=0.0, help="over the champion (default %(default)s)"
    )

    p = _command(
        subparsers,
        "deploy",
        _deploy,
        "Register the run's model (idempotent), move alias 'champion' to it and 'previous' to the old\n"
        "champion, tag who/when/why, then smoke-test models:/<name>@champion on test rows.\n"
        "A failed smoke test puts both aliases back and exits non-zero.",
        "model_name, version, alias, previous_version, model_uri, smoke_test_rows",
    )
    p.add_argument("--run-id", required=True, help="MLflow run id to promote")
    p.add_argument("--model-name", required=True, help="registered model name")
    p.add_argument(
        "--data-path", required=True, type=s3_uri, help="s3://<processed>/<date>/ (smoke-test rows)"
    )
    p.add_argument("--reason", default="", help="why (recorded on the model version)")
    p.add_argument(
        "--deployed-by",
        help="who (recorded on the model version; default $DEPLOYED_BY or user@host)",
    )
    p.add_argument(
        "--smoke-rows",
        type=positive_int,
        default=32,
        help="test rows to score (default %(default)s)",
    )

    p = _command(
        subparsers,
        "rollback",
        _rollback,
        "Move alias 'champion' back to the version under 'previous' (or to --to-version) after a "
        "load test, and clear 'previous'.",
        "model_name, version (the champion now), alias, previous_version (the champion before)",
    )
    p.add_argument("--model-name", required=True, help="registered model name")
    p.add_argument(
        "--to-version",
        type=lambda text: str(positive_int(text)),
        help="the version to make champion (default: the one under 'previous')",
    )
    p.add_argument("--reason", default="", help="why (recorded on both versions)")
    p.add_argument("--deployed-by", help="who (default $DEPLOYED_BY or user@host)")

    p = _command(
        subparsers,
        "serve",
        _serve,
        "Serve models:/<name>@champion over HTTP and follow the alias: a version that `deploy` or\n"
        "`rollback` promotes is loaded in the background and swapped in (no restart).\n"
        'GET /health, GET /version, POST /invocations {"inputs": [[64 pixels], ...]};\n'
        "503 'no champion yet' until the pipeline has promoted a model. Runs until SIGTERM.",
        "none (a server, not a pipeline step)",
    )
    p.add_argument("--model-name", required=True, help="registered model name")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=positive_int, default=8080, help="port (default %(default)s)")
    p.add_argument(
        "--poll-seconds",
        type=positive_float,
        default=30.0,
        help="seconds between two looks at the alias (default %(default)s)",
    )
    return parser


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ml_trainer.config import OPTIMIZERS

    p.add_argument(
        "--data-path", required=True, type=s3_uri, help="s3://<processed>/<date>/ from preprocess"
    )
    p.add_argument("--lr", required=True, type=positive_float, help="learning rate (> 0)")
    p.add_argument("--batch-size", required=True, type=positive_int, help="rows per optimizer step")
    p.add_argument("--optimizer", required=True, choices=OPTIMIZERS, help="optimizer")
    p.add_argument(
        "--experiment-name", required=True, help="MLflow experiment (created if missing)"
    )
    p.add_argument(
        "--epochs", type=positive_int, default=30, help="maximum epochs (default %(default)s)"
    )
    p.add_argument(
        "--hidden-sizes",
        type=hidden_sizes,
        default=(256, 256),
        help="hidden layer widths (default 256,256)",
    )
    p.add_argument(
        "--patience",
        type=non_negative_int,
        default=5,
        help="early stopping: epochs without a lower validation loss (0 = off; default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=42,
        help="initialisation, shuffling, validation split (default %(default)s)",
    )
    p.add_argument(
        "--weight-decay", type=float, help="default: the optimizer's own (adamw 0.01, others 0)"
    )
    p.add_argument("--momentum", type=float, default=0.9, help="sgd momentum (default %(default)s)")
    p.add_argument(
        "--dropout", type=unit_interval, default=0.0, help="after each hidden layer (default 0)"
    )
    p.add_argument(
        "--val-fraction",
        type=open_fraction,
        default=0.1,
        help="share of train held out for early stopping (default 0.1)",
    )
    p.add_argument("--trial-id", default="", help="hyperparameter trial id (MLflow tag, run name)")
    p.add_argument(
        "--checkpoint-uri",
        type=s3_uri,
        help="s3://<processed>/<date>/checkpoints/<trial>/: saved every epoch, resumed on rerun (default: none)",
    )
    p.add_argument(
        "--date", type=iso_date, help="partition date tag (default: read from --data-path)"
    )
    p.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="(default auto: CUDA if present)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto = bf16 autocast on CUDA, fp32 on CPU",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (pays off on GPU, long runs)",
    )


# ---------------------------------------------------------------------------- entry point
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
    configure_logging()
    try:
        result = args.handler(args)
        if result is not None:  # `serve` runs until stopped and returns nothing
            write_xcom(result)
    except TrainerError as exc:
        sys.stderr.write(f"trainer {args.command}: {exc.problem} Fix: {exc.fix}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
