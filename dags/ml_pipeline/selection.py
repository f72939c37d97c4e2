"""The reduce step of the sweep: pick the best trial, tolerating failed ones down to a minimum.

`TrialResult` and `BestTrial` are flat frozen dataclasses: Airflow's serde stores a dataclass as
its fields plus its class name, and rebuilds it in the consuming task. Deserialising a class
outside `airflow.*` needs it allowed; `allow_in_xcom()` registers `BestTrial` (what
`select_best_model` returns) in every process that parses the DAG (the DAG file calls it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialResult:
    """What the trainer's `train` command reported for one trial (CONTRACTS §4 XCom keys).

    `accuracy`, `f1_score`, `loss` are on the test split; `val_*` on the validation split
    (held out of train), which is what trials are ranked on.
    """

    trial_id: str
    accuracy: float
    f1_score: float
    loss: float
    val_accuracy: float
    val_f1_score: float
    val_loss: float
    run_id: str
    model_uri: str
    params: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    epochs_run: int = 0
    resumed_from_epoch: int | None = None

    @classmethod
    def from_xcom(cls, value: Any) -> TrialResult | None:
        """Parse a trainer XCom; None when the value is not a successful train result
        (a failed try may leave `None` or a partial object behind)."""
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                trial_id=str(value["trial_id"]),
                accuracy=float(value["accuracy"]),
                f1_score=float(value.get("f1_score", 0.0)),
                loss=float(value.get("loss", float("nan"))),
                val_accuracy=float(value["val_accuracy"]),
                val_f1_score=float(value.get("val_f1_score") or 0.0),
                val_loss=float(value.get("val_loss") or float("nan")),
                run_id=str(value["run_id"]),
                model_uri=str(value.get("model_uri", "")),
                params=dict(value.get("params") or {}),
                device=str(value.get("device", "")),
                epochs_run=int(value.get("epochs_run") or 0),
                resumed_from_epoch=(
                    None
                    if value.get("resumed_from_epoch") is None
                    else int(value["resumed_from_epoch"])
                ),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class BestTrial:
    """Result of `select_best_model`: the winning trial and how the sweep went."""

    trial_id: str
    run_id: str
    model_uri: str
    accuracy: float
    f1_score: float
    loss: float
    params: dict[str, Any]
    trials_planned: int
    trials_succeeded: int
    failed_trial_ids: list[str] = field(default_factory=list)
    val_accuracy: float | None = None  # what it won on (the validation split)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def allow_in_xcom() -> None:
    """Let this process deserialise `BestTrial` from XCom."""
    from airflow.sdk.serde import allow_class

    allow_class(BestTrial)


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
