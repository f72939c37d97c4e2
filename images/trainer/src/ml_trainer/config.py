"""Typed configuration of a training run (no heavy imports: the CLI builds these)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class Hyperparameters:
    """What the model and the loop depend on; all of it is logged as MLflow params."""

    lr: float
    batch_size: int
    optimizer: str
    epochs: int = 30
    hidden_sizes: tuple[int, ...] = (256, 256)
    patience: int = 5  # early stopping; 0 = off
    seed: int = 42
    weight_decay: float | None = None  # None = the optimizer's own default
    momentum: float = 0.9  # sgd only
    dropout: float = 0.0
    val_fraction: float = 0.1  # share of train held out for early stopping

    def as_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["hidden_sizes"] = list(self.hidden_sizes)
        return params


@dataclass(frozen=True)
class TrainJob:
    """Where the data comes from and where the run goes."""

    data_path: str
    experiment_name: str
    hyperparameters: Hyperparameters
    trial_id: str = ""
    checkpoint_uri: str | None = None
    date: str = ""
    device: str = "auto"  # auto | cuda | cpu
    precision: str = "auto"  # auto | bf16 | fp32
    compile: bool = False
