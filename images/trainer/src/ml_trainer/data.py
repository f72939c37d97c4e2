"""Daily partitions from scikit-learn's bundled `digits` set (nothing is downloaded).

A day's partition is a deterministic function of its date: every base image appears once
per 1,797 rows, each with a little pixel noise (so no two rows are identical and no two days
are), and rows beyond the first pass are shifted by up to one pixel (augmentation for
`--rows`). `drift` in [0, 1] damages the day the way production data goes bad: labels flip
to a wrong class (label noise) and the pixel distribution moves (covariate shift), so
drifted days yield worse models and a champion trained on clean days scores badly on them.
"""

from __future__ import annotations

import hashlib
import logging
import math

import numpy as np
import pandas as pd

from ml_trainer import contract

log = logging.getLogger(__name__)

PIXEL_NOISE = 0.25  # std of the per-pixel noise every row gets
LABEL_NOISE_AT_FULL_DRIFT = 0.5  # share of labels flipped at drift 1.0
MAX_DRIFT = 1.0


def seed_for_date(date: str, extra: int = 0) -> int:
    """A stable 32-bit seed from the partition date and an extra seed mixed into it.

    Same (date, extra) -> same data on any machine; every date differs for any one extra seed.
    """
    return int(hashlib.sha256(f"{date}/{extra}".encode()).hexdigest()[:8], 16)


def load_base() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 digit images (intensities 0..16) and their labels."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return images.astype(np.float32), labels.astype(np.int64)


def shift_images(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Shift each 8x8 image by (dy, dx) in {-1, 0, 1} pixels, filling with background."""
    side = contract.IMAGE_SIDE
    padded = np.pad(images.reshape(-1, side, side), ((0, 0), (1, 1), (1, 1)))
    out = np.empty((len(images), side, side), dtype=images.dtype)
    for sy in (-1, 0, 1):
        for sx in (-1, 0, 1):
            rows = (dy == sy) & (dx == sx)
            if rows.any():
                out[rows] = padded[rows, 1 - sy : 1 - sy + side, 1 - sx : 1 - sx + side]
    return out.reshape(len(images), side * side)


def apply_drift(
    images: np.ndarray, labels: np.ndarray, drift: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Label noise + covariate shift, both growing with `drift`."""
    labels = labels.copy()
    flip = rng.random(len(labels)) < LABEL_NOISE_AT_FULL_DRIFT * drift
    # a flipped label moves to a uniformly chosen *different* class
    offsets = rng.integers(1, contract.NUM_CLASSES, size=int(flip.sum()))
    labels[flip] = (labels[flip] + offsets) % contract.NUM_CLASSES
    gain = 1.0 - 0.3 * drift
    offset = 3.0 * drift
    images = images * gain + offset + rng.normal(0.0, 3.0 * drift, size=images.shape)
    return images.astype(np.float32), labels


def generate(
    date: str, rows: int | None = None, drift: float = 0.0, seed: int | None = None
) -> pd.DataFrame:
    """The partition of `date` as a DataFrame in the data contract's schema."""
    if not 0.0 <= drift <= MAX_DRIFT:
        raise ValueError(f"drift must be within [0, {MAX_DRIFT}], got {drift}")
    base_images, base_labels = load_base()
    n_base = len(base_labels)
    n_rows = rows or n_base
    rng = np.random.default_rng(seed_for_date(date, seed))

    passes = math.ceil(n_rows / n_base)
    order = np.concatenate([rng.permutation(n_base) for _ in range(passes)])[:n_rows]
    images, labels = base_images[order], base_labels[order]

    repeat = np.arange(n_rows) >= n_base  # rows beyond the first pass get shifted copies
    dy = np.where(repeat, rng.integers(-1, 2, size=n_rows), 0)
    dx = np.where(repeat, rng.integers(-1, 2, size=n_rows), 0)
    images = shift_images(images, dy, dx)
    images = images + rng.normal(0.0, PIXEL_NOISE, size=images.shape)
    if drift > 0:
        images, labels = apply_drift(images, labels, drift, rng)
    images = np.clip(images, contract.PIXEL_MIN, contract.PIXEL_MAX).astype(contract.FEATURE_DTYPE)

    frame = pd.DataFrame(images, columns=list(contract.FEATURE_COLUMNS))
    frame[contract.LABEL_COLUMN] = labels.astype(contract.LABEL_DTYPE)
    log.info("generated %d rows for %s (drift %.2f, %d base images)", n_rows, date, drift, n_base)
    return frame
