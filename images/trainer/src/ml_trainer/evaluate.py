"""`evaluate`: score the candidate and the current champion on the *same* test split.

A metric the champion scored on another day's data is not a fair baseline, so both models
are loaded (the candidate from its run, the champion through the registered model's alias
`champion`) and scored here. The decision:

    should_deploy = candidate >= min_accuracy and candidate - champion >= min_improvement

No registered model, or no `champion` alias yet, means a baseline of 0 (and the reason says
so). A champion that exists but cannot be loaded, or an MLflow server that does not answer,
fails the command: deciding without a baseline would deploy blind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_trainer import contract, tracking
from ml_trainer.errors import TrainerError
from ml_trainer.preprocess import TEST_NAME
from ml_trainer.storage import ObjectStore, S3Uri

log = logging.getLogger(__name__)

CHAMPION, PREVIOUS = "champion", "previous"


@dataclass(frozen=True)
class EvalSplit:
    features: np.ndarray  # raw pixels, float32
    labels: np.ndarray
    uri: str


@dataclass(frozen=True)
class ModelScore:
    accuracy: float
    f1: float
    rows: int


def load_test_split(store: ObjectStore, data_path: str) -> EvalSplit:
    uri = S3Uri.parse(data_path).as_prefix().join(TEST_NAME)
    frame = store.read_parquet(
        uri, "run `trainer preprocess` for that date first (or fix --data-path)."
    )
    missing = [c for c in contract.COLUMNS if c not in frame.columns]
    if missing:
        raise TrainerError(f"{uri} lacks columns {missing[:5]}.", "rerun `trainer preprocess`.")
    return EvalSplit(
        frame[list(contract.FEATURE_COLUMNS)].to_numpy(dtype=np.float32, copy=True),
        frame[contract.LABEL_COLUMN].to_numpy(dtype=np.int64, copy=True),
        str(uri),
    )


def predict_logits(model_uri: str, features: np.ndarray, what: str, fix: str) -> np.ndarray:
    """Load `model_uri` as a pyfunc (as serving does) and return its logits."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(model_uri)
        logits = np.asarray(model.predict(features), dtype=np.float64)
    except Exception as exc:
        raise TrainerError(
            f"Cannot load or run the {what} {model_uri} from MLflow at "
            f"{tracking.tracking_uri()} ({type(exc).__name__}: {str(exc)[:300]}).",
            fix,
        ) from exc
    if logits.shape != (len(features), contract.NUM_CLASSES) or not np.isfinite(logits).all():
        raise TrainerError(
            f"The {what} {model_uri} returned logits of shape {logits.shape} "
            f"(expected ({len(features)}, {contract.NUM_CLASSES}), all finite).",
            fix,
        )
    return logits


def score(model_uri: str, split: EvalSplit, what: str, fix: str) -> ModelScore:
    from sklearn.metrics import f1_score

    predicted = predict_logits(model_uri, split.features, what, fix).argmax(axis=1)
    return ModelScore(
        accuracy=float((predicted == split.labels).mean()),
        f1=float(f1_score(split.labels, predicted, average="macro", zero_division=0)),
        rows=len(split.labels),
    )


def find_alias(model_name: str, alias: str) -> tuple[Any | None, str]:
    """(model version, "") or (None, why there is none). Connection failures raise."""
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
    except RestException as exc:
        if tracking.is_not_found(exc):
            return None, f"no registered model {model_name!r} yet"
        raise
    try:
        return client.get_model_version_by_alias(model_name, alias), ""
    except RestException as exc:
        if tracking.is_not_found(exc):
            return None, f"registered model {model_name!r} has no {alias!r} alias yet"
        raise


def decide(
    candidate: float,
    baseline: float,
    min_accuracy: float,
    min_improvement: float,
    baseline_label: str,
) -> tuple[bool, str]:
    improvement = candidate - baseline
    if candidate < min_accuracy:
        return False, f"candidate accuracy {candidate:.4f} is below min_accuracy {min_accuracy:.4f}"
    if improvement < min_improvement:
        return False, (
            f"candidate accuracy {candidate:.4f} vs {baseline_label} {baseline:.4f}: improvement "
            f"{improvement:+.4f} is below min_improvement {min_improvement:+.4f}"
        )
    return True, (
        f"candidate accuracy {candidate:.4f} >= min_accuracy {min_accuracy:.4f} and beats "
        f"{baseline_label} {baseline:.4f} by {improvement:+.4f} (>= {min_improvement:+.4f})"
    )


def run(
    run_id: str,
    data_path: str,
    model_name: str,
    min_accuracy: float = 0.9,
    min_improvement: float = 0.0,
    store: ObjectStore | None = None,
) -> dict[str, Any]:
    from mlflow import MlflowClient

    store = store or ObjectStore()
    tracking.configure()
    tracking.check_reachable()
    split = load_test_split(store, data_path)

    with tracking.mlflow_errors(f"find the model logged by run {run_id}"):
        candidate_uri = tracking.logged_model_uri(run_id)
    candidate = score(
        candidate_uri,
        split,
        "candidate model",
        "the run's model artifacts are missing or damaged: rerun training for this trial.",
    )

    with tracking.mlflow_errors(f"look up alias {CHAMPION!r} of registered model {model_name!r}"):
        champion, no_champion_reason = find_alias(model_name, CHAMPION)
    if champion is None:
        baseline = ModelScore(0.0, 0.0, split.labels.size)
        baseline_label = f"baseline 0 ({no_champion_reason})"
    else:
        baseline = score(
            f"models:/{model_name}@{CHAMPION}",
            split,
            f"champion (version {champion.version})",
            "the champion's artifacts are missing or unreadable, so there is no fair baseline and "
            "the pipeline will not deploy blind: restore the artifacts, or move the alias to a "
            f"loadable version (`trainer rollback --model-name {model_name}`, or `trainer deploy` "
            "of a known-good run), then rerun evaluate.",
        )
        baseline_label = f"champion version {champion.version}"

    should_deploy, reason = decide(
        candidate.accuracy, baseline.accuracy, min_accuracy, min_improvement, baseline_label
    )
    log.info("%s: %s", "DEPLOY" if should_deploy else "KEEP CHAMPION", reason)
    result = {
        "should_deploy": should_deploy,
        "new_accuracy": candidate.accuracy,
        "new_f1_score": candidate.f1,
        "baseline_accuracy": baseline.accuracy,
        "baseline_f1_score": baseline.f1,
        "improvement": candidate.accuracy - baseline.accuracy,
        "run_id": run_id,
        "model_uri": candidate_uri,
        "champion_version": champion.version if champion is not None else None,
        "test_rows": split.labels.size,
        "reason": reason,
    }
    with tracking.mlflow_errors(f"record the evaluation on run {run_id}"):
        client = MlflowClient()
        for key in ("new_accuracy", "baseline_accuracy", "improvement"):
            client.log_metric(run_id, f"eval_{key}", float(result[key]))
        client.set_tag(run_id, "eval.should_deploy", str(should_deploy).lower())
        client.set_tag(run_id, "eval.champion_version", str(result["champion_version"]))
        client.set_tag(run_id, "eval.test_data", split.uri)
        client.set_tag(run_id, "eval.reason", reason)
    return result
