"""Typed configuration of a training run, declared once: these fields are the `train` command's
flags (`ml_trainer.options`), its defaults and help, and what the DAGs' search space and Params
read (`dags/ml_pipeline/trainer_options.json`). No heavy imports: the CLI builds these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ml_trainer.options import (
    HIDDEN_SIZES,
    INTEGER,
    ISO_DATE,
    NON_NEGATIVE_INT,
    NUMBER,
    OPEN_FRACTION,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    S3_URI,
    SWITCH,
    UNIT_INTERVAL,
    nested,
    option,
)

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class Hyperparameters:
    """What the model and the loop depend on; all of it is logged as MLflow params.

    `searchable=True`: the training DAG can sweep it (one entry of its `search_space` Param);
    `short` is its part of a trial id.
    """

    optimizer: str = option(help="optimizer", choices=OPTIMIZERS, searchable=True, short="")
    lr: float = option(help="learning rate (> 0)", kind=POSITIVE_FLOAT, searchable=True, short="lr")
    batch_size: int = option(
        help="rows per optimizer step", kind=POSITIVE_INT, searchable=True, short="bs"
    )
    epochs: int = option(20, help="maximum epochs", kind=POSITIVE_INT)
    hidden_sizes: tuple[int, ...] = option(
        (256, 256), help="hidden layer widths, comma separated", kind=HIDDEN_SIZES
    )
    patience: int = option(
        3,
        help="early stopping: epochs without a lower validation loss (0 = off)",
        kind=NON_NEGATIVE_INT,
    )
    seed: int = option(
        42,
        help="initialisation, shuffling, validation split",
        kind=INTEGER,
    )
    weight_decay: float | None = option(
        None,
        help="default: the optimizer's own (adamw 0.01, others 0)",
        kind=NUMBER,
        searchable=True,
        short="wd",
    )
    momentum: float = option(0.9, help="sgd momentum", kind=NUMBER, searchable=True, short="m")
    dropout: float = option(
        0.0, help="after each hidden layer", kind=UNIT_INTERVAL, searchable=True, short="do"
    )
    val_fraction: float = option(
        0.1, help="share of train held out for early stopping", kind=OPEN_FRACTION
    )

    def as_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["hidden_sizes"] = list(self.hidden_sizes)
        return params


@dataclass(frozen=True)
class TrainJob:
    """Where the data comes from and where the run goes (the `train` command's options)."""

    data_path: str = option(help="s3://<processed>/<date>/ from preprocess", kind=S3_URI)
    experiment_name: str = option(help="MLflow experiment (created if missing)")
    hyperparameters: Hyperparameters = field(metadata=nested(Hyperparameters))
    trial_id: str = option("", help="hyperparameter trial id (MLflow tag, run name)")
    checkpoint_uri: str | None = option(
        None,
        help="s3://<processed>/<date>/checkpoints/<trial>/: saved every epoch, resumed on rerun "
        "(default: none)",
        kind=S3_URI,
    )
    date: str | None = option(
        None, help="partition date tag (default: read from --data-path)", kind=ISO_DATE
    )
    device: str = option("auto", help="auto: CUDA if present", choices=("auto", "cuda", "cpu"))
    precision: str = option(
        "auto", help="auto = bf16 autocast on CUDA, fp32 on CPU", choices=("auto", "bf16", "fp32")
    )
    compile: bool = option(
        False, help="torch.compile the model (pays off on GPU, long runs)", kind=SWITCH
    )
