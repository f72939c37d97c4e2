"""The reduce step of the sweep: pick the best trial, tolerating failed ones down to a minimum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml_pipeline.types import BestTrial, TrialResult


class NotEnoughTrials(RuntimeError):
    """Fewer trials succeeded than `min_successful_trials` asks for."""


def rank_key(result: TrialResult) -> tuple[float, float, float, str]:
    """On the validation split: higher accuracy wins, then higher F1, then lower loss; the
    trial id breaks ties so the choice is stable. The test split is never looked at here:
    `evaluate` compares the winner with the champion on it, and choosing on it too would
    bias the candidate's test score upwards."""
    loss = result.val_loss if result.val_loss == result.val_loss else float("inf")  # NaN last
    return (-result.val_accuracy, -result.val_f1_score, loss, result.trial_id)


def select_best(
    values: Sequence[Any], planned_trial_ids: Sequence[str], min_successful: int
) -> BestTrial:
    """Reduce the trainer XComs of a sweep to the best trial.

    `values` is the lazy sequence of `train_with_hp` XComs: one per trial that pushed one,
    fetched one at a time (indexing up to `len()`, so the end is not found by a miss).
    A value that is not a complete train result (a failed try can leave `None` or a
    partial object) does not count; nor does one for a trial that was not planned.
    """
    planned = list(planned_trial_ids)
    results: dict[str, TrialResult] = {}
    for index in range(len(values)):
        value = values[index]
        result = TrialResult.from_xcom(value)
        if result is not None and result.trial_id in planned:
            results[result.trial_id] = result
    failed = [t for t in planned if t not in results]
    if len(results) < min_successful:
        shown = ", ".join(failed[:10]) + (" …" if len(failed) > 10 else "")
        raise NotEnoughTrials(
            f"only {len(results)} of {len(planned)} trials succeeded but min_successful_trials "
            f"is {min_successful}; failed trials: {shown or 'none'}. Read the task logs of "
            "hyperparameter_tuning.train_with_hp for those map indexes (the trainer prints the "
            "cause and the fix), then clear the failed trials or rerun the DAG."
        )
    best = min(results.values(), key=rank_key)
    return BestTrial(
        trial_id=best.trial_id,
        run_id=best.run_id,
        model_uri=best.model_uri,
        accuracy=best.accuracy,
        f1_score=best.f1_score,
        loss=best.loss,
        params=best.params,
        trials_planned=len(planned),
        trials_succeeded=len(results),
        failed_trial_ids=failed,
        val_accuracy=best.val_accuracy,
    )
