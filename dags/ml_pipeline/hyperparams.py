"""The hyperparameter search: DAG Params → trials → trainer arguments (pure Python, no Airflow).

`grid` is the cross product learning rates x batch sizes x optimizers; `random` draws
`max_trials` points (learning rate log-uniform between the smallest and largest given
rate, batch size and optimizer uniformly from their lists), seeded by `search_seed` and
the run's date so a rerun of the same date draws the same trials.

Mapped arguments are not templated by Airflow, so everything date-dependent (`--date`,
`--data-path`, checkpoint URIs) is rendered here, from the run's context, not with `{{ ds }}`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ml_pipeline.types import Trial

# [core] max_map_length: Airflow refuses to expand a task into more instances than this.
MAX_MAP_LENGTH = 1024
OPTIMIZERS = ("adam", "adamw", "sgd")


class SearchSpaceError(ValueError):
    """The Params describe a search the pipeline cannot run."""


@dataclass(frozen=True)
class SearchSpace:
    learning_rates: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    optimizers: tuple[str, ...]
    search: str = "grid"
    max_trials: int = 16
    search_seed: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SearchSpace:
        """Build from the DAG Params (already JSON-schema-validated when set from the UI;
        checked again here because `dag.test(run_conf=…)` and the API can bypass the form)."""
        lrs = tuple(float(x) for x in params["learning_rates"])
        bss = tuple(int(x) for x in params["batch_sizes"])
        opts = tuple(str(x) for x in params["optimizers"])
        space = cls(
            learning_rates=lrs,
            batch_sizes=bss,
            optimizers=opts,
            search=str(params.get("search", "grid")),
            max_trials=int(params.get("max_trials", 16)),
            search_seed=int(params.get("search_seed", 0)),
        )
        space.check()
        return space

    def check(self) -> None:
        problems = []
        if not self.learning_rates or any(not (0 < lr <= 1) for lr in self.learning_rates):
            problems.append(
                f"learning_rates must be non-empty, each in (0, 1]: {self.learning_rates}"
            )
        if not self.batch_sizes or any(bs < 1 for bs in self.batch_sizes):
            problems.append(f"batch_sizes must be non-empty positive integers: {self.batch_sizes}")
        if not self.optimizers or any(o not in OPTIMIZERS for o in self.optimizers):
            problems.append(f"optimizers must be non-empty, from {OPTIMIZERS}: {self.optimizers}")
        if self.search not in ("grid", "random"):
            problems.append(f"search must be 'grid' or 'random', not {self.search!r}")
        if not (1 <= self.max_trials <= MAX_MAP_LENGTH):
            problems.append(f"max_trials must be in 1..{MAX_MAP_LENGTH} ([core] max_map_length)")
        if problems:
            raise SearchSpaceError("; ".join(problems))

    @property
    def grid_size(self) -> int:
        return len(self.learning_rates) * len(self.batch_sizes) * len(self.optimizers)


def _trial_id(index: int, lr: float, batch_size: int, optimizer: str) -> str:
    return f"t{index:02d}-{optimizer}-lr{lr:g}-bs{batch_size}"


def plan_trials(space: SearchSpace, ds: str) -> list[Trial]:
    """The trials to run, in a stable order."""
    if space.search == "grid":
        if space.grid_size > space.max_trials:
            raise SearchSpaceError(
                f"the grid has {space.grid_size} trials (learning_rates x batch_sizes x optimizers) "
                f"but max_trials is {space.max_trials}: shrink a list, raise max_trials, "
                "or set search='random' to sample max_trials points"
            )
        points = list(itertools.product(space.learning_rates, space.batch_sizes, space.optimizers))
    else:
        digest = hashlib.sha256(f"{space.search_seed}:{ds}".encode()).hexdigest()
        rng = random.Random(int(digest[:16], 16))
        lo, hi = min(space.learning_rates), max(space.learning_rates)
        points, seen = [], set()
        attempts = 0
        while len(points) < space.max_trials and attempts < space.max_trials * 50:
            attempts += 1
            lr = lo if lo == hi else math.exp(rng.uniform(math.log(lo), math.log(hi)))
            point = (
                float(f"{lr:.3g}"),
                rng.choice(space.batch_sizes),
                rng.choice(space.optimizers),
            )
            if point not in seen:
                seen.add(point)
                points.append(point)
    return [Trial(_trial_id(i, lr, bs, opt), lr, bs, opt) for i, (lr, bs, opt) in enumerate(points)]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def path_safe(text: str) -> str:
    """A run id or task id as one S3 key segment."""
    return _UNSAFE.sub("_", text).strip("_") or "run"


@dataclass(frozen=True)
class TrainingOptions:
    """The non-searched training arguments, from Params."""

    epochs: int
    hidden_sizes: str
    patience: int
    seed: int
    experiment: str

    @classmethod
    def from_params(cls, params: Mapping[str, Any], experiment: str) -> TrainingOptions:
        return cls(
            epochs=int(params["epochs"]),
            hidden_sizes=str(params["hidden_sizes"]),
            patience=int(params["patience"]),
            seed=int(params["seed"]),
            experiment=experiment,
        )


def train_arguments(
    trial: Trial, options: TrainingOptions, *, data_path: str, ds: str, run_id: str
) -> list[str]:
    """`trainer train` arguments for one trial; `--trial-id <id>` comes last (the map index
    label reads `arguments[-1]`). Checkpoints are per DAG run and trial, so a retry resumes
    its own checkpoint and a rerun of the same date starts clean."""
    prefix = data_path if data_path.endswith("/") else data_path + "/"
    checkpoint = f"{prefix}checkpoints/{path_safe(run_id)}/{trial.trial_id}/"
    return [
        "--data-path", prefix,
        "--lr", f"{trial.lr:g}",
        "--batch-size", str(trial.batch_size),
        "--optimizer", trial.optimizer,
        "--epochs", str(options.epochs),
        "--hidden-sizes", options.hidden_sizes,
        "--patience", str(options.patience),
        "--seed", str(options.seed),
        "--experiment-name", options.experiment,
        "--checkpoint-uri", checkpoint,
        "--date", ds,
        "--trial-id", trial.trial_id,
    ]  # fmt: skip


def trial_id_of(arguments: Sequence[str]) -> str:
    return str(arguments[-1])
