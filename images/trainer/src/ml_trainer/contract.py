"""The data contract of a daily partition, defined once.

A partition is one parquet file of 8x8 handwritten-digit images (scikit-learn's bundled
`digits` set): 64 pixel intensities and the digit. Every step reads these names from here;
`validate` enforces the rest (ranges, nulls, size, balance, duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Policy limits `validate` applies (the CLI exposes each as a flag)."""

    min_rows: int = 500
    # each class must hold at least this share of the rows, relative to a perfectly
    # balanced split (0.5 = at least half of 1/NUM_CLASSES)
    min_class_share: float = 0.5
    max_duplicate_fraction: float = 0.01


def dtypes() -> dict[str, str]:
    """Column name -> the dtype name pandas reports for it."""
    return {**dict.fromkeys(FEATURE_COLUMNS, FEATURE_DTYPE), LABEL_COLUMN: LABEL_DTYPE}
