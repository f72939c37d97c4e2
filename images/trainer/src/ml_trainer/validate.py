"""`validate`: hold a partition against the data contract and list *every* violation.

A bad partition must stop the pipeline before anything trains on it. The report is written
next to the data (`validation_report.json`) whether the partition passes or not, so the
reason a day was rejected stays with the day.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ml_trainer import contract
from ml_trainer.errors import TrainerError
from ml_trainer.storage import ObjectStore, S3Uri

log = logging.getLogger(__name__)

REPORT_NAME = "validation_report.json"
CHECKS = ("schema", "nulls", "ranges", "min_rows", "class_balance", "duplicates")


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


def _preview(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def check_schema(frame: pd.DataFrame) -> CheckResult:
    problems = []
    missing = [c for c in contract.COLUMNS if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in contract.COLUMNS]
    if missing:
        problems.append(f"missing columns {_preview(missing)}")
    if extra:
        problems.append(f"unexpected columns {_preview(extra)}")
    wrong = [
        f"{c} is {frame[c].dtype} (expected {want})"
        for c, want in contract.dtypes().items()
        if c in frame.columns and str(frame[c].dtype) != want
    ]
    if wrong:
        problems.append(f"wrong dtypes: {_preview(wrong, 3)}")
    if problems:
        return CheckResult("schema", False, "; ".join(problems))
    return CheckResult(
        "schema", True, f"{len(contract.COLUMNS)} columns with the contract's dtypes"
    )


def check_nulls(frame: pd.DataFrame) -> CheckResult:
    present = [c for c in contract.COLUMNS if c in frame.columns]
    counts = frame[present].isna().sum()
    bad = counts[counts > 0]
    if len(bad):
        cells = [f"{c} ({n})" for c, n in bad.items()]
        return CheckResult("nulls", False, f"{int(bad.sum())} null/NaN cells in {_preview(cells)}")
    return CheckResult("nulls", True, "no null or NaN cells")


def check_ranges(frame: pd.DataFrame) -> CheckResult:
    problems = []
    features = [c for c in contract.FEATURE_COLUMNS if c in frame.columns]
    if features:
        numeric = frame[features].apply(pd.to_numeric, errors="coerce")  # text -> NaN
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        outside = (values < contract.PIXEL_MIN) | (values > contract.PIXEL_MAX)
        if outside.any():
            problems.append(
                f"{int(outside.sum())} pixel values outside [{contract.PIXEL_MIN:g}, {contract.PIXEL_MAX:g}]"
                f" (seen min {np.nanmin(values):g}, max {np.nanmax(values):g})"
            )
    if contract.LABEL_COLUMN in frame.columns:
        labels = frame[contract.LABEL_COLUMN].dropna()
        unknown = sorted({str(v) for v in labels.unique() if v not in contract.CLASSES})
        if unknown:
            problems.append(
                f"labels outside {contract.CLASSES[0]}..{contract.CLASSES[-1]}: {_preview(unknown)}"
            )
    if problems:
        return CheckResult("ranges", False, "; ".join(problems))
    return CheckResult("ranges", True, "pixels and labels within range")


def check_min_rows(frame: pd.DataFrame, min_rows: int) -> CheckResult:
    if len(frame) < min_rows:
        return CheckResult(
            "min_rows", False, f"only {len(frame)} rows, fewer than the minimum {min_rows}"
        )
    return CheckResult("min_rows", True, f"{len(frame)} rows >= {min_rows}")


def check_class_balance(frame: pd.DataFrame, min_class_share: float) -> CheckResult:
    if contract.LABEL_COLUMN not in frame.columns or frame.empty:
        return CheckResult("class_balance", False, "no labels to count")
    counts = frame[contract.LABEL_COLUMN].value_counts()
    floor = min_class_share * len(frame) / contract.NUM_CLASSES
    short = [f"{c} ({int(counts.get(c, 0))})" for c in contract.CLASSES if counts.get(c, 0) < floor]
    if short:
        return CheckResult(
            "class_balance", False, f"classes below {floor:.0f} rows: {_preview(short, 10)}"
        )
    return CheckResult("class_balance", True, f"every class has >= {floor:.0f} rows")


def check_duplicates(frame: pd.DataFrame, max_fraction: float) -> CheckResult:
    if frame.empty:
        return CheckResult("duplicates", True, "no rows")
    duplicated = int(frame.duplicated().sum())
    fraction = duplicated / len(frame)
    if fraction > max_fraction:
        return CheckResult(
            "duplicates",
            False,
            f"{duplicated} duplicate rows ({fraction:.1%}), more than the allowed {max_fraction:.1%}",
        )
    return CheckResult("duplicates", True, f"{duplicated} duplicate rows ({fraction:.1%})")


def check_frame(frame: pd.DataFrame, thresholds: contract.Thresholds) -> list[CheckResult]:
    """Every check, in the order of `CHECKS`; none short-circuits another."""
    return [
        check_schema(frame),
        check_nulls(frame),
        check_ranges(frame),
        check_min_rows(frame, thresholds.min_rows),
        check_class_balance(frame, thresholds.min_class_share),
        check_duplicates(frame, thresholds.max_duplicate_fraction),
    ]


def check_structure(frame: pd.DataFrame) -> list[CheckResult]:
    """The checks that make a frame unusable for any step (used by `preprocess` too)."""
    return [
        r for r in (check_schema(frame), check_nulls(frame), check_ranges(frame)) if not r.passed
    ]


def violation_message(uri: S3Uri | str, failed: list[CheckResult]) -> str:
    listed = "; ".join(f"[{r.name}] {r.detail}" for r in failed)
    return f"{uri} violates the data contract in {len(failed)} check(s): {listed}."


def run(input_uri: str, thresholds: contract.Thresholds, store: ObjectStore | None = None) -> dict:
    store = store or ObjectStore()
    uri = S3Uri.parse(input_uri)
    report_uri = uri.sibling(REPORT_NAME)
    frame = store.read_parquet(
        uri,
        missing_fix="the partition has not arrived: check the upstream delivery for that date "
        "(or create it with `trainer generate-data --date D --output URI`).",
    )
    results = check_frame(frame, thresholds)
    failed = [r for r in results if not r.passed]
    report = {
        "uri": str(uri),
        "rows": len(frame),
        "columns": len(frame.columns),
        "passed": not failed,
        "checks": [asdict(r) for r in results],
        "thresholds": asdict(thresholds),
        "validated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    store.write_json(report_uri, report)
    for r in results:
        log.info("check %-13s %s  %s", r.name, "ok  " if r.passed else "FAIL", r.detail)
    if failed:
        raise TrainerError(
            violation_message(uri, failed) + f" Report: {report_uri}.",
            "fix the partition upstream (or regenerate it) and rerun; do not train on it.",
        )
    return {
        "rows": len(frame),
        "columns": len(frame.columns),
        "checks_passed": [r.name for r in results],
        "report_uri": str(report_uri),
    }
