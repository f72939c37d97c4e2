"""`preprocess`: a deterministic stratified train/test split and standardisation statistics.

The statistics (per-pixel mean and standard deviation) are fitted on the train split only,
so nothing about the test rows leaks into training. The split files keep the contract's raw
pixel columns; `train` standardises with `stats.json` and folds the same statistics into
the model it logs, so the registered model takes raw pixels and serving needs no side file.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from ml_trainer import contract
from ml_trainer.errors import TrainerError
from ml_trainer.storage import ObjectStore, S3Uri, parse_parquet
from ml_trainer.validate import check_structure, violation_message

log = logging.getLogger(__name__)

TRAIN_NAME, TEST_NAME, STATS_NAME = "train.parquet", "test.parquet", "stats.json"
STD_FLOOR = 1e-6  # pixels that never change (the image corners) keep a unit scale


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def split(
    frame: pd.DataFrame, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified by label, deterministic for a given seed."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=test_fraction, random_state=seed, stratify=frame[contract.LABEL_COLUMN]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fit_standardisation(train: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Per-pixel mean and standard deviation of the train split."""
    values = train[list(contract.FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std < STD_FLOOR, 1.0, std)
    return mean.tolist(), std.tolist()


def run(
    input_uri: str,
    output_prefix: str,
    seed: int = 42,
    test_fraction: float = 0.2,
    store: ObjectStore | None = None,
) -> dict:
    store = store or ObjectStore()
    uri = S3Uri.parse(input_uri)
    prefix = S3Uri.parse(output_prefix).as_prefix()
    raw = store.read_bytes(
        uri, missing_fix="run `trainer validate` on the partition first; check the date."
    )
    frame = parse_parquet(uri, raw)
    failed = check_structure(frame)
    if failed:
        raise TrainerError(
            violation_message(uri, failed),
            "run `trainer validate` for the full report, fix the partition upstream and rerun.",
        )
    data_hash = content_hash(raw)
    train, test = split(frame[list(contract.COLUMNS)], test_fraction, seed)
    mean, std = fit_standardisation(train)
    stats = {
        "feature_columns": list(contract.FEATURE_COLUMNS),
        "label_column": contract.LABEL_COLUMN,
        "mean": mean,
        "std": std,
        "fitted_on": "train",
        "train_rows": len(train),
        "test_rows": len(test),
        "seed": seed,
        "test_fraction": test_fraction,
        "input_uri": str(uri),
        "data_hash": data_hash,
    }
    train_uri, test_uri, stats_uri = (
        prefix.join(TRAIN_NAME),
        prefix.join(TEST_NAME),
        prefix.join(STATS_NAME),
    )
    store.write_parquet(train_uri, train)
    store.write_parquet(test_uri, test)
    store.write_json(stats_uri, stats)
    log.info(
        "split %d rows into %d train / %d test (seed %d)", len(frame), len(train), len(test), seed
    )
    return {
        "train_uri": str(train_uri),
        "test_uri": str(test_uri),
        "stats_uri": str(stats_uri),
        "train_rows": len(train),
        "test_rows": len(test),
        "data_hash": data_hash,
    }
