"""`train`: fit the MLP on one day's processed split, tracked in MLflow, resumable.

Reads like the recipe: data -> model -> optimizer -> loop -> test metrics -> logged model.
The infrastructure lives beside it: `checkpoint` (resume), `tracking` (MLflow),
`storage` (S3). MLflow pattern: one run per trial with params, a metric per epoch, tags
that make the run reproducible (data hash, date, trial, git sha / image tag, device), and
the model logged with a signature and an input example.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ml_trainer import __version__, contract, tracking
from ml_trainer.checkpoint import Checkpoint, CheckpointStore, capture_rng, restore_rng
from ml_trainer.config import Hyperparameters, TrainJob
from ml_trainer.errors import TrainerError
from ml_trainer.loop import (
    Device,
    EarlyStopping,
    EpochResult,
    Splits,
    evaluate,
    fit,
    make_optimizer,
    select_device,
)
from ml_trainer.model import build_mlp, for_serving
from ml_trainer.preprocess import STATS_NAME, TEST_NAME, TRAIN_NAME
from ml_trainer.storage import ObjectStore, S3Uri

log = logging.getLogger(__name__)

# Test-only: exit abruptly (like SIGKILL, no cleanup) after this epoch's checkpoint is saved.
KILL_AFTER_EPOCH_ENV = "ML_TRAINER_TEST_KILL_AFTER_EPOCH"
EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class PreparedData:
    splits: Splits
    mean: list[float]
    std: list[float]
    data_hash: str
    example: np.ndarray = field(repr=False)  # raw test rows: the logged input example


# ---------------------------------------------------------------------------- data
def _to_device(array: np.ndarray, device: Device) -> torch.Tensor:
    tensor = torch.tensor(array)  # a copy: pandas hands out read-only views
    if device.is_cuda:
        return tensor.pin_memory().to(device.device, non_blocking=True)
    return tensor


def to_splits(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    mean: Sequence[float],
    std: Sequence[float],
    device: Device,
) -> Splits:
    """Contract frames -> standardised feature and label tensors on the device."""
    mean_ = np.asarray(mean, dtype=np.float32)
    std_ = np.asarray(std, dtype=np.float32)

    def features(frame: pd.DataFrame) -> torch.Tensor:
        raw = frame[list(contract.FEATURE_COLUMNS)].to_numpy(dtype=np.float32)
        return _to_device((raw - mean_) / std_, device)

    def labels(frame: pd.DataFrame) -> torch.Tensor:
        return _to_device(frame[contract.LABEL_COLUMN].to_numpy(dtype=np.int64), device)

    return Splits(
        features(train), labels(train), features(val), labels(val), features(test), labels(test)
    )


def load_data(
    store: ObjectStore, data_path: str, hp: Hyperparameters, device: Device
) -> PreparedData:
    """train/test parquet + stats.json -> standardised tensors on the device."""
    from sklearn.model_selection import train_test_split

    prefix = S3Uri.parse(data_path).as_prefix()
    hint = "run `trainer preprocess` for that date first (or fix --data-path)."
    train = store.read_parquet(prefix.join(TRAIN_NAME), hint)
    test = store.read_parquet(prefix.join(TEST_NAME), hint)
    stats = store.read_json(prefix.join(STATS_NAME), hint)
    for name, frame in (("train", train), ("test", test)):
        missing = [c for c in contract.COLUMNS if c not in frame.columns]
        if missing:
            raise TrainerError(
                f"{prefix.join(name + '.parquet')} lacks columns {missing[:5]}.",
                "rerun `trainer preprocess`.",
            )
    train, val = train_test_split(
        train,
        test_size=hp.val_fraction,
        random_state=hp.seed,
        stratify=train[contract.LABEL_COLUMN],
    )
    splits = to_splits(train, val, test, stats["mean"], stats["std"], device)
    example = test[list(contract.FEATURE_COLUMNS)].to_numpy(dtype=np.float32, copy=True)[
        :EXAMPLE_ROWS
    ]
    log.info(
        "data: %d train, %d validation, %d test rows from %s",
        len(train),
        len(val),
        len(test),
        prefix,
    )
    return PreparedData(splits, stats["mean"], stats["std"], stats.get("data_hash", ""), example)


# ---------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def infer_date(data_path: str) -> str:
    match = re.search(r"\d{4}-\d{2}-\d{2}", data_path)
    return match.group(0) if match else ""


def run_tags(job: TrainJob, data: PreparedData, device: Device, date: str) -> dict[str, str]:
    git_sha = os.environ.get("GIT_SHA", "")
    tags = {
        "data_hash": data.data_hash,
        "data_path": job.data_path,
        "date": date,
        "trial_id": job.trial_id,
        "device": device.name,
        "precision": str(device.autocast_dtype or torch.float32).removeprefix("torch."),
        "git_sha": git_sha,
        "image_tag": os.environ.get("IMAGE_TAG", ""),
        "checkpoint_uri": job.checkpoint_uri or "",
        "trainer_version": __version__,
        "mlflow.source.git.commit": git_sha,
    }
    return {k: v for k, v in tags.items() if v}


def log_model(model: torch.nn.Module, example: np.ndarray) -> str:
    """Log the serving model (raw pixels in) as a pt2 program; return its `models:/` URI."""
    import mlflow
    from mlflow.models import infer_signature

    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    info = mlflow.pytorch.log_model(
        model,
        name=tracking.MODEL_NAME_IN_RUN,
        signature=infer_signature(example, output),
        input_example=example,
        # torch.export program: loading it runs no pickled code (MLflow 3's safe default)
        serialization_format="pt2",
        # pinned here rather than inferred (inference imports the world and takes seconds)
        pip_requirements=[
            f"mlflow=={mlflow.__version__}",
            f"torch=={torch.__version__.split('+')[0]}",
            f"numpy=={np.__version__}",
        ],
    )
    return info.model_uri


def _kill_hook(epoch: int) -> None:
    target = os.environ.get(KILL_AFTER_EPOCH_ENV)
    if target and int(target) == epoch:
        log.warning(
            "%s=%s: exiting abruptly after epoch %d (test hook)",
            KILL_AFTER_EPOCH_ENV,
            target,
            epoch,
        )
        logging.shutdown()
        os._exit(137)


# ---------------------------------------------------------------------------- the command
def run(job: TrainJob, store: ObjectStore | None = None) -> dict[str, Any]:
    import mlflow

    store = store or ObjectStore()
    hp = job.hyperparameters
    tracking.configure()
    tracking.check_reachable()

    device = select_device(job.device, job.precision)
    seed_everything(hp.seed)
    data = load_data(store, job.data_path, hp, device)
    date = job.date or infer_date(job.data_path)
    fingerprint = {**hp.as_params(), "data_hash": data.data_hash}

    checkpoints = CheckpointStore(job.checkpoint_uri, store) if job.checkpoint_uri else None
    resumed = checkpoints.load() if checkpoints else None
    if resumed is not None:
        checkpoints.check_matches(resumed, fingerprint)
        if resumed.completed and resumed.result is not None:
            log.info(
                "checkpoint %s: training already completed; returning its result", checkpoints.uri
            )
            return {**resumed.result, "resumed_from_epoch": resumed.epoch}
    if checkpoints is None:
        log.warning("no --checkpoint-uri: a retried pod will start this trial from scratch")

    # model, optimizer, loop state
    model = build_mlp(hp.hidden_sizes, dropout=hp.dropout).to(device.device)
    optimizer = make_optimizer(
        hp.optimizer, model.parameters(), hp.lr, hp.weight_decay, hp.momentum, fused=device.is_cuda
    )
    early_stopping = EarlyStopping(hp.patience)
    generator = torch.Generator(device=device.device).manual_seed(hp.seed)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resumed is not None:
        model.load_state_dict(resumed.model_state)
        optimizer.load_state_dict(resumed.optimizer_state)
        early_stopping.load_state_dict(resumed.early_stopping, device.device)
        restore_rng(resumed.rng, generator)
        history, start_epoch = list(resumed.history), resumed.epoch
        log.info(
            "resuming from %s after epoch %d (MLflow run %s)",
            checkpoints.uri,
            start_epoch,
            resumed.mlflow_run_id,
        )
    train_model = torch.compile(model) if job.compile else None

    with tracking.mlflow_errors(f"record the training run in experiment {job.experiment_name!r}"):
        tracking.ensure_experiment(job.experiment_name)
        run_name = "-".join(p for p in ("train", date, job.trial_id) if p)
        with mlflow.start_run(
            run_id=resumed.mlflow_run_id if resumed else None,
            run_name=None if resumed else run_name,
        ) as active:
            run_id = active.info.run_id
            if resumed is None:
                mlflow.log_params({**hp.as_params(), "device": device.name, "compile": job.compile})
            mlflow.set_tags(
                {**run_tags(job, data, device, date), "resumed_from_epoch": str(start_epoch)}
            )

            def snapshot(epoch: int, result: dict[str, Any] | None = None) -> Checkpoint:
                return Checkpoint(
                    epoch=epoch,
                    fingerprint=fingerprint,
                    mlflow_run_id=run_id,
                    model_state={k: v.cpu() for k, v in model.state_dict().items()},
                    optimizer_state=optimizer.state_dict(),
                    early_stopping=early_stopping.state_dict(),
                    rng=capture_rng(generator),
                    history=history,
                    completed=result is not None,
                    result=result,
                )

            def on_epoch_end(result: EpochResult) -> None:
                mlflow.log_metrics(result.metrics(), step=result.epoch)
                history.append({"epoch": result.epoch, **result.metrics()})
                if checkpoints is not None:
                    checkpoints.save(snapshot(result.epoch))
                _kill_hook(result.epoch)

            fit(
                model,
                optimizer,
                data.splits,
                epochs=hp.epochs,
                batch_size=hp.batch_size,
                generator=generator,
                device=device,
                early_stopping=early_stopping,
                start_epoch=start_epoch,
                on_epoch_end=on_epoch_end,
                train_model=train_model,
            )
            epochs_run = int(history[-1]["epoch"]) if history else start_epoch
            early_stopping.restore_best(model)
            test = evaluate(model, data.splits.x_test, data.splits.y_test, device)
            best_val = next((h for h in history if h["epoch"] == early_stopping.best_epoch), {})
            mlflow.log_metrics(
                {
                    "test_accuracy": test.accuracy,
                    "test_f1": test.f1,
                    "test_loss": test.loss,
                    "best_epoch": early_stopping.best_epoch,
                    "epochs_run": epochs_run,
                }
            )
            model_uri = log_model(for_serving(model, data.mean, data.std), data.example)
            result = {
                "accuracy": test.accuracy,
                "f1_score": test.f1,
                "loss": test.loss,
                # the best epoch's validation scores: what model selection ranks trials on
                # (the test scores above are kept for the comparison with the champion)
                "val_accuracy": best_val.get("val_accuracy"),
                "val_f1_score": best_val.get("val_f1"),
                "val_loss": best_val.get("val_loss"),
                "best_epoch": early_stopping.best_epoch,
                "run_id": run_id,
                "model_uri": model_uri,
                "params": hp.as_params(),
                "trial_id": job.trial_id,
                "device": device.name,
                "epochs_run": epochs_run,
                "resumed_from_epoch": start_epoch,
                "data_hash": data.data_hash,
            }
            if checkpoints is not None:
                checkpoints.save(snapshot(epochs_run, result))
    log.info(
        "test accuracy %.4f  f1 %.4f  loss %.4f  (run %s, %s)",
        test.accuracy,
        test.f1,
        test.loss,
        run_id,
        model_uri,
    )
    return result
