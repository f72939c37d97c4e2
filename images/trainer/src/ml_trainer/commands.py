"""The trainer's commands: each one's options (a dataclass, `ml_trainer.options`), what it does
and what it writes to the XCom file. `ml_trainer.cli` builds the parser from `COMMANDS`;
`describe_commands()` is what `make generate-trainer-options` writes for the DAGs.

The implementations are imported inside each `run` (torch, mlflow, pandas are heavy), so
`trainer --help` and the parser start fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ml_trainer.config import TrainJob
from ml_trainer.contract import Thresholds
from ml_trainer.options import (
    INTEGER,
    ISO_DATE,
    NON_NEGATIVE_INT,
    NUMBER,
    OPEN_FRACTION,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    S3_URI,
    UNIT_INTERVAL,
    VERSION_NUMBER,
    describe,
    nested,
    option,
)


# ---------------------------------------------------------------------------- options
@dataclass(frozen=True)
class GenerateDataOptions:
    date: str = option(help="partition date YYYY-MM-DD (seeds the data)", kind=ISO_DATE)
    output: str = option(help="s3://<datasets>/daily/<date>/features.parquet", kind=S3_URI)
    drift: float = option(
        0.0,
        help="0..1: label noise (up to 50% flipped) and covariate shift; drifted days train "
        "worse models",
        kind=UNIT_INTERVAL,
    )
    rows: int | None = option(
        None,
        help="rows to write; more than 1797 up-samples with shifted, noisy copies",
        kind=POSITIVE_INT,
    )
    seed: int = option(0, help="extra seed mixed with the date", kind=NON_NEGATIVE_INT)


@dataclass(frozen=True)
class ValidateOptions:
    input: str = option(help="s3://…/features.parquet", kind=S3_URI)
    thresholds: Thresholds = field(metadata=nested(Thresholds))


@dataclass(frozen=True)
class PreprocessOptions:
    input: str = option(help="s3://…/features.parquet", kind=S3_URI)
    output_prefix: str = option(help="s3://<processed>/<date>/", kind=S3_URI)
    seed: int = option(42, help="split seed", kind=INTEGER)
    test_fraction: float = option(0.2, help="test share", kind=OPEN_FRACTION)


@dataclass(frozen=True)
class EvaluateOptions:
    run_id: str = option(help="MLflow run id of the candidate (train's XCom run_id)")
    data_path: str = option(help="s3://<processed>/<date>/ (its test.parquet)", kind=S3_URI)
    model_name: str = option(help="registered model name, e.g. digits-classifier")
    min_accuracy: float = option(
        0.9, help="deploy only at or above this test accuracy", kind=UNIT_INTERVAL
    )
    min_improvement: float = option(
        0.005,
        help="deploy only when the candidate beats the champion by this much on the same test "
        "split (> 0: rerunning a date does not redeploy an equal model)",
        kind=NUMBER,
    )


@dataclass(frozen=True)
class DeployOptions:
    run_id: str = option(help="MLflow run id to promote")
    model_name: str = option(help="registered model name")
    data_path: str = option(help="s3://<processed>/<date>/ (smoke-test rows)", kind=S3_URI)
    reason: str = option("", help="why (recorded on the model version)")
    deployed_by: str | None = option(
        None, help="who (recorded on the model version; default $DEPLOYED_BY or user@host)"
    )
    smoke_rows: int = option(32, help="test rows to score", kind=POSITIVE_INT)


@dataclass(frozen=True)
class RollbackOptions:
    model_name: str = option(help="registered model name")
    to_version: str | None = option(
        None,
        help="the version to make champion (default: the one under 'previous')",
        kind=VERSION_NUMBER,
    )
    reason: str = option("", help="why (recorded on both versions)")
    deployed_by: str | None = option(None, help="who (default $DEPLOYED_BY or user@host)")


@dataclass(frozen=True)
class ServeOptions:
    model_name: str = option(help="registered model name")
    host: str = option("0.0.0.0", help="address to listen on")
    port: int = option(8080, help="port", kind=POSITIVE_INT)
    poll_seconds: float = option(
        30.0, help="seconds between two looks at the alias", kind=POSITIVE_FLOAT
    )


# ---------------------------------------------------------------------------- what each does
def _generate_data(o: GenerateDataOptions) -> dict[str, Any]:
    from ml_trainer import contract, data
    from ml_trainer.storage import ObjectStore, S3Uri

    frame = data.generate(o.date, rows=o.rows, drift=o.drift, seed=o.seed)
    ObjectStore().write_parquet(S3Uri.parse(o.output), frame)
    return {
        "uri": o.output,
        "rows": len(frame),
        "columns": len(contract.COLUMNS),
        "drift": o.drift,
        "date": o.date,
        "seed": o.seed,
    }


def _validate(o: ValidateOptions) -> dict[str, Any]:
    from ml_trainer import validate

    return validate.run(o.input, o.thresholds)


def _preprocess(o: PreprocessOptions) -> dict[str, Any]:
    from ml_trainer import preprocess

    return preprocess.run(o.input, o.output_prefix, seed=o.seed, test_fraction=o.test_fraction)


def _train(job: TrainJob) -> dict[str, Any]:
    from ml_trainer import train

    return train.run(job)


def _evaluate(o: EvaluateOptions) -> dict[str, Any]:
    from ml_trainer import evaluate

    return evaluate.run(
        o.run_id,
        o.data_path,
        o.model_name,
        min_accuracy=o.min_accuracy,
        min_improvement=o.min_improvement,
    )


def _deploy(o: DeployOptions) -> dict[str, Any]:
    from ml_trainer import registry

    return registry.deploy(
        o.run_id,
        o.model_name,
        o.data_path,
        reason=o.reason,
        deployed_by=o.deployed_by,
        smoke_rows=o.smoke_rows,
    )


def _rollback(o: RollbackOptions) -> dict[str, Any]:
    from ml_trainer import registry

    return registry.rollback(
        o.model_name, reason=o.reason, deployed_by=o.deployed_by, to_version=o.to_version
    )


def _serve(o: ServeOptions) -> None:
    from ml_trainer import serve

    serve.serve(o.model_name, o.host, o.port, o.poll_seconds)


# ---------------------------------------------------------------------------- the commands
@dataclass(frozen=True)
class Command:
    name: str
    options: type
    run: Callable[[Any], dict[str, Any] | None]  # None: a server, nothing for the XCom file
    description: str
    xcom_keys: str


COMMANDS: tuple[Command, ...] = (
    Command(
        "generate-data",
        GenerateDataOptions,
        _generate_data,
        "Write a day's partition from scikit-learn's bundled digits (deterministic from the date).",
        "uri, rows, columns, drift, date, seed",
    ),
    Command(
        "validate",
        ValidateOptions,
        _validate,
        "Check a partition against the data contract; list every violation and exit non-zero on any.\n"
        "Checks: schema (columns, dtypes), nulls/NaN, ranges, minimum rows, class balance, duplicates.\n"
        "The report goes next to the data as validation_report.json (also on failure).",
        "rows, columns, checks_passed (names of the checks), report_uri",
    ),
    Command(
        "preprocess",
        PreprocessOptions,
        _preprocess,
        "Split a partition into train/test (stratified, by seed) and fit standardisation on train only.\n"
        "Writes <prefix>train.parquet, test.parquet (the contract's raw columns) and stats.json.",
        "train_uri, test_uri, stats_uri, train_rows, test_rows, data_hash",
    ),
    Command(
        "train",
        TrainJob,
        _train,
        "Train the MLP on a processed split, tracked in MLflow; checkpoints every epoch and resumes.\n"
        "Device: CUDA when present (bf16 autocast, TF32), else CPU (deterministic for a seed).\n"
        "With --checkpoint-uri a rerun resumes from the last epoch in the same MLflow run.",
        "accuracy, f1_score, loss (test split), val_accuracy, val_f1_score, val_loss (validation\n"
        "split, best epoch), best_epoch, run_id, model_uri, params,\n"
        "trial_id, device, epochs_run, resumed_from_epoch, data_hash",
    ),
    Command(
        "evaluate",
        EvaluateOptions,
        _evaluate,
        "Score the candidate run's model and the champion (alias 'champion') on the same test split.\n"
        "should_deploy = candidate >= min_accuracy and candidate - champion >= min_improvement.\n"
        "No champion yet -> baseline 0. Champion unloadable or MLflow down -> exit non-zero.",
        "should_deploy, new_accuracy, new_f1_score, baseline_accuracy, baseline_f1_score, improvement,\n"
        "run_id, model_uri, champion_version, test_rows, reason",
    ),
    Command(
        "deploy",
        DeployOptions,
        _deploy,
        "Register the run's model (idempotent), move alias 'champion' to it and 'previous' to the old\n"
        "champion, tag who/when/why, then smoke-test models:/<name>@champion on test rows.\n"
        "A failed smoke test puts both aliases back and exits non-zero.",
        "model_name, version, alias, previous_version, model_uri, smoke_test_rows",
    ),
    Command(
        "rollback",
        RollbackOptions,
        _rollback,
        "Move alias 'champion' back to the version under 'previous' (or to --to-version) after a "
        "load test, and clear 'previous'.",
        "model_name, version (the champion now), alias, previous_version (the champion before)",
    ),
    Command(
        "serve",
        ServeOptions,
        _serve,
        "Serve models:/<name>@champion over HTTP and follow the alias: a version that `deploy` or\n"
        "`rollback` promotes is loaded in the background and swapped in (no restart).\n"
        'GET /health, GET /version, POST /invocations {"inputs": [[64 pixels], ...]};\n'
        "503 'no champion yet' until the pipeline has promoted a model. Runs until SIGTERM.",
        "none (a server, not a pipeline step)",
    ),
)


def describe_commands() -> dict[str, Any]:
    """Every command's options as JSON (`dags/ml_pipeline/trainer_options.json`)."""
    return {
        "generated_by": "make generate-trainer-options (from ml_trainer.commands; do not edit)",
        "commands": {
            c.name: {"summary": c.description.split("\n")[0], "options": describe(c.options)}
            for c in COMMANDS
        },
    }
