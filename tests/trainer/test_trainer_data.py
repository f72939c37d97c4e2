"""The data: daily partitions from the bundled digits, the contract, and `validate`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ml_trainer import contract, data, validate
from ml_trainer.contract import Thresholds


@pytest.fixture(scope="module")
def day() -> pd.DataFrame:
    return data.generate("2026-01-15")


def test_a_partition_is_a_deterministic_function_of_its_date(day: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(day, data.generate("2026-01-15"))
    other = data.generate("2026-01-16")
    assert not np.allclose(
        day[list(contract.FEATURE_COLUMNS)], other[list(contract.FEATURE_COLUMNS)]
    )


def test_a_partition_has_the_contract_schema_and_passes_validation(day: pd.DataFrame) -> None:
    assert tuple(day.columns) == contract.COLUMNS
    assert {c: str(t) for c, t in day.dtypes.items()} == contract.dtypes()
    assert all(r.passed for r in validate.check_frame(day, Thresholds())), validate.check_frame(
        day, Thresholds()
    )


def test_rows_up_samples_with_augmented_copies_not_duplicates() -> None:
    big = data.generate("2026-01-15", rows=4000)
    assert len(big) == 4000
    assert not big.duplicated().any()
    assert validate.check_class_balance(big, 0.5).passed


def test_drift_flips_labels_and_shifts_the_pixels(day: pd.DataFrame) -> None:
    drifted = data.generate("2026-01-15", drift=0.8)
    # same date -> same base order, so labels can be compared row by row
    flipped = (drifted[contract.LABEL_COLUMN] != day[contract.LABEL_COLUMN]).mean()
    assert 0.3 < flipped < 0.5  # ~ 0.5 * drift
    pixels = list(contract.FEATURE_COLUMNS)
    assert drifted[pixels].to_numpy().mean() > day[pixels].to_numpy().mean() + 1.0
    assert all(
        r.passed for r in validate.check_frame(drifted, Thresholds())
    )  # drifted is still valid data


def _failed(frame: pd.DataFrame, **thresholds: float) -> dict[str, str]:
    return {
        r.name: r.detail
        for r in validate.check_frame(frame, Thresholds(**thresholds))
        if not r.passed
    }


def test_validate_finds_wrong_columns(day: pd.DataFrame) -> None:
    frame = day.rename(columns={"pixel_3": "pixel_three"}).astype({"label": "int32"})
    failed = _failed(frame)
    assert set(failed) >= {"schema"}
    assert "missing columns pixel_3" in failed["schema"]
    assert "unexpected columns pixel_three" in failed["schema"]
    assert "label is int32" in failed["schema"]


def test_validate_finds_nans_and_out_of_range_values(day: pd.DataFrame) -> None:
    frame = day.copy()
    frame.loc[:9, "pixel_10"] = np.nan
    frame.loc[20, "pixel_11"] = 99.0
    frame.loc[21, "label"] = 12
    failed = _failed(frame)
    assert "10 null/NaN cells in pixel_10 (10)" in failed["nulls"]
    assert "1 pixel values outside [0, 16]" in failed["ranges"]
    assert "labels outside 0..9: 12" in failed["ranges"]


def test_validate_finds_too_few_rows_imbalance_and_duplicates(day: pd.DataFrame) -> None:
    small = day[day["label"] != 3].head(300)
    frame = pd.concat([small, small.head(30)], ignore_index=True)
    failed = _failed(frame)
    assert failed.keys() == {"min_rows", "class_balance", "duplicates"}
    assert "only 330 rows, fewer than the minimum 500" in failed["min_rows"]
    assert "3 (0)" in failed["class_balance"]
    assert "30 duplicate rows" in failed["duplicates"]


def test_the_violation_message_lists_every_failed_check(day: pd.DataFrame) -> None:
    frame = day.head(100).copy()
    frame.loc[0, "pixel_5"] = np.nan
    failed = [r for r in validate.check_frame(frame, Thresholds()) if not r.passed]
    message = validate.violation_message("s3://datasets/daily/x/features.parquet", failed)
    assert len(failed) >= 2 and f"in {len(failed)} check(s)" in message
    assert "[nulls]" in message and "[min_rows]" in message
