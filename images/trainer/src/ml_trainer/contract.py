"""The data contract of a daily partition, defined once.

A partition is one parquet file of 8x8 handwritten-digit images (scikit-learn's bundled
`digits` set): 64 pixel intensities and the digit. Every step reads these names from here;
`validate` enforces the rest (ranges, nulls, size, balance, duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_trainer.options import POSITIVE_INT, UNIT_INTERVAL, option

IMAGE_SIDE = 8
FEATURE_COLUMNS: tuple[str, ...] = tuple(f"pixel_{i}" for i in range(IMAGE_SIDE * IMAGE_SIDE))
LABEL_COLUMN = "label"
COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, LABEL_COLUMN)

FEATURE_DTYPE = "float32"
LABEL_DTYPE = "int64"

PIXEL_MIN, PIXEL_MAX = 0.0, 16.0
CLASSES: tuple[int, ...] = tuple(range(10))
NUM_CLASSES = len(CLASSES)


@dataclass(frozen=True)
class Thresholds:
    """Policy limits `validate` applies (each is one of its flags)."""

    min_rows: int = option(500, help="minimum rows", kind=POSITIVE_INT)
    min_class_share: float = option(
        0.5,
        help="each class needs this share of a balanced split's rows (0.5 = half of 1/classes)",
        kind=UNIT_INTERVAL,
    )
    max_duplicate_fraction: float = option(
        0.01, help="largest tolerated share of duplicate rows", kind=UNIT_INTERVAL
    )


def dtypes() -> dict[str, str]:
    """Column name -> the dtype name pandas reports for it."""
    return {**dict.fromkeys(FEATURE_COLUMNS, FEATURE_DTYPE), LABEL_COLUMN: LABEL_DTYPE}
