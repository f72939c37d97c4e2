"""Typed values passed between the training DAG's tasks (through XCom).

They are flat frozen dataclasses: Airflow's serde stores a dataclass as its fields plus its
class name, and rebuilds it in the consuming task. Deserialising a class outside `airflow.*`
needs it allowed; `allow_in_xcom()` registers ours in every process that imports this
module (the DAG file imports it, so every worker that runs our tasks has done so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trial:
    """One point of the search space."""

    trial_id: str
    lr: float
    batch_size: int
    optimizer: str

    def params(self) -> dict[str, Any]:
        return {"lr": self.lr, "batch_size": self.batch_size, "optimizer": self.optimizer}


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


@dataclass(frozen=True)
class RunSummary:
    """What `send_notification` reports (and returns, for `make demo`'s table)."""

    dag_id: str
    run_id: str
    date: str
    decision: str
    reason: str
    trials_planned: int | None = None
    trials_succeeded: int | None = None
    best_trial_id: str | None = None
    best_params: dict[str, Any] | None = None
    candidate_accuracy: float | None = None
    baseline_accuracy: float | None = None
    improvement: float | None = None
    champion_version: str | None = None
    previous_version: str | None = None
    mlflow_run_url: str | None = None
    mlflow_model_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def allow_in_xcom() -> None:
    """Let this process deserialise our dataclasses from XCom."""
    from airflow.sdk.serde import allow_class

    for cls in (Trial, TrialResult, BestTrial, RunSummary):
        allow_class(cls)
