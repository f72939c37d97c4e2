"""`preprocess`: a deterministic stratified split, statistics fitted on the train split only."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from ml_trainer import contract, data, preprocess
from ml_trainer.errors import TrainerError
from ml_trainer.storage import S3Uri
from trainer_support import MemoryStore

SOURCE = "s3://datasets/daily/2026-01-15/features.parquet"
PREFIX = "s3://processed/2026-01-15/"


@pytest.fixture
def store_with_day(memory_store: MemoryStore) -> MemoryStore:
    memory_store.write_parquet(S3Uri.parse(SOURCE), data.generate("2026-01-15"))
    return memory_store


def _frame(store: MemoryStore, uri: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.objects[uri]))


def test_split_and_statistics_are_written_with_the_xcom_of_the_contract(
    store_with_day: MemoryStore,
) -> None:
    result = preprocess.run(SOURCE, PREFIX, seed=7, test_fraction=0.2, store=store_with_day)
    assert result.keys() == {
        "train_uri",
        "test_uri",
        "stats_uri",
        "train_rows",
        "test_rows",
        "data_hash",
    }
    assert (result["train_rows"], result["test_rows"]) == (1437, 360)
    assert result["data_hash"].startswith("sha256:")
    train = _frame(store_with_day, result["train_uri"])
    test = _frame(store_with_day, result["test_uri"])
    assert tuple(train.columns) == tuple(test.columns) == contract.COLUMNS
    # stratified: every class keeps its share in the test split
    assert test["label"].value_counts().min() >= 34

    stats = json.loads(store_with_day.objects[result["stats_uri"]])
    pixels = train[list(contract.FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    everything = pd.concat([train, test])[list(contract.FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    assert stats["fitted_on"] == "train"
    np.testing.assert_allclose(stats["mean"], pixels.mean(axis=0), rtol=1e-9)
    assert not np.allclose(
        stats["mean"], everything.mean(axis=0), rtol=1e-6
    )  # the test rows did not leak in
    assert min(stats["std"]) > 0  # constant pixels keep a unit scale
    assert stats["data_hash"] == result["data_hash"]


def test_the_same_seed_gives_the_same_split(store_with_day: MemoryStore) -> None:
    first = preprocess.run(SOURCE, PREFIX, seed=7, store=store_with_day)
    train_a = _frame(store_with_day, first["train_uri"])
    preprocess.run(SOURCE, PREFIX, seed=7, store=store_with_day)
    pd.testing.assert_frame_equal(train_a, _frame(store_with_day, first["train_uri"]))
    preprocess.run(SOURCE, PREFIX, seed=8, store=store_with_day)
    assert not train_a.equals(_frame(store_with_day, first["train_uri"]))


def test_preprocess_refuses_a_partition_that_breaks_the_contract(memory_store: MemoryStore) -> None:
    frame = data.generate("2026-01-15", rows=600).drop(columns=["pixel_0"])
    frame.loc[0, "pixel_1"] = np.nan
    memory_store.write_parquet(S3Uri.parse(SOURCE), frame)
    with pytest.raises(TrainerError) as failure:
        preprocess.run(SOURCE, PREFIX, store=memory_store)
    assert "[schema] missing columns pixel_0" in str(failure.value)
    assert "[nulls]" in str(failure.value)
    assert "trainer validate" in failure.value.fix
