"""The hyperparameter search: the `search_space` Param → trials → `trainer train` arguments.

Pure Python, no Airflow. A search space maps a dimension — a hyperparameter the trainer marks
searchable (`trainer_options.json`: `optimizer`, `lr`, `batch_size`, …) — to a list of values
or, for a number, a range `{"min": …, "max": …, "log": true|false}`:

    {"optimizer": ["adam", "adamw"], "lr": {"min": 0.0003, "max": 0.01, "log": true}, "batch_size": [64]}

`grid` runs the cross product of the lists (a range has no grid); `random` draws `max_trials`
points (a list uniformly, a range uniformly or log-uniformly, integers rounded, other numbers to
3 significant digits), seeded by `search_seed` and the run's date, so a rerun of the same date
draws the same trials. Dimensions are taken in the trainer's order, whatever the order of the
Param. A trial has an explicit id (`t03-adam-lr0.003-bs64`): its map index label, its MLflow run
name and its checkpoint folder.

Mapped arguments are not templated by Airflow, so everything date-dependent (`--date`,
`--data-path`, checkpoint URIs) is rendered here, from the run's context, not with `{{ ds }}`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml_pipeline.run_context import path_safe
from ml_pipeline.trainer import TrainerOption, trainer_commands

# [core] max_map_length: Airflow refuses to expand a task into more instances than this.
MAX_MAP_LENGTH = 1024
STRATEGIES = ("grid", "random")
# `trainer train` options the pipeline sets itself (never Params, never searched).
SET_BY_PIPELINE = ("data_path", "experiment_name", "checkpoint_uri", "date", "trial_id")
# The run's `seed` Param: the data split (`preprocess --seed`) and every trial (`train --seed`).
RUN_SEED = "seed"


class SearchSpaceError(ValueError):
    """The Params describe a search the pipeline cannot run."""


def train_options() -> dict[str, TrainerOption]:
    return trainer_commands().options["train"]


def searchable_options() -> dict[str, TrainerOption]:
    return {name: o for name, o in train_options().items() if o.searchable}


def training_options() -> dict[str, TrainerOption]:
    """`trainer train` options a run sets once for all its trials: the `training` Param."""
    return {
        name: o
        for name, o in train_options().items()
        if not o.required and name not in (*SET_BY_PIPELINE, RUN_SEED)
    }


def run_training_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The fixed `trainer train` options of a run: the trainer's defaults, what the `training`
    Param sets (a conf may give only some), and the run's seed."""
    given = params.get("training") or {}
    unknown = sorted(set(given) - set(training_options()))
    if unknown:
        raise SearchSpaceError(
            f"training has no option {', '.join(unknown)}; the options are "
            f"{', '.join(training_options())}"
        )
    defaults = {name: o.default for name, o in training_options().items()}
    return {**defaults, **given, RUN_SEED: params[RUN_SEED]}


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a list of values, or a range (`low`..`high`)."""

    option: TrainerOption
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def name(self) -> str:
        return self.option.name

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def draw(self, rng: random.Random) -> Any:
        if not self.is_range:
            return rng.choice(self.values)
        assert self.low is not None and self.high is not None
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        if self.option.schema.get("type") == "integer":
            return min(max(round(x), math.ceil(self.low)), math.floor(self.high))
        return float(f"{x:.3g}")


def _dimension(option: TrainerOption, spec: Any) -> Dimension:
    name = option.name
    if isinstance(spec, list):
        if not spec:
            raise SearchSpaceError(f"search_space.{name} is an empty list: give at least one value")
        values = tuple(option.value(v) for v in spec)
        if len(set(values)) != len(values):
            raise SearchSpaceError(f"search_space.{name} lists a value twice: {spec}")
        return Dimension(option, values=values)
    if isinstance(spec, Mapping) and option.is_numeric and {"min", "max"} <= set(spec):
        low, high, log = float(spec["min"]), float(spec["max"]), bool(spec.get("log", False))
        if low > high:
            raise SearchSpaceError(f"search_space.{name}: min {low:g} is above max {high:g}")
        if log and low <= 0:
            raise SearchSpaceError(
                f"search_space.{name}: a log range needs min > 0, got {low:g}; "
                "raise min or drop `log`"
            )
        if option.schema.get("type") == "integer" and math.ceil(low) > math.floor(high):
            raise SearchSpaceError(f"search_space.{name}: no integer between {low:g} and {high:g}")
        return Dimension(option, low=low, high=high, log=log)
    shape = (
        'a list of values or {"min": …, "max": …, "log": …}'
        if option.is_numeric
        else ("a list of values")
    )
    raise SearchSpaceError(f"search_space.{name} must be {shape}, not {spec!r}")


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    strategy: str = "grid"
    max_trials: int = 16
    seed: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SearchSpace:
        """Build from the DAG Params and check what their JSON schema cannot (ranges, grids,
        required hyperparameters); the schema already refused wrong types and values."""
        raw = params["search_space"]
        if not isinstance(raw, Mapping) or not raw:
            raise SearchSpaceError(f"search_space must be a non-empty object, not {raw!r}")
        searchable = searchable_options()
        unknown = sorted(set(raw) - set(searchable))
        if unknown:
            raise SearchSpaceError(
                f"search_space has no dimension {', '.join(unknown)}; the trainer's searchable "
                f"hyperparameters are {', '.join(searchable)}"
            )
        missing = [n for n, o in searchable.items() if o.required and n not in raw]
        if missing:
            raise SearchSpaceError(
                f"search_space must give {', '.join(missing)} (`trainer train` has no default "
                "for them): add a list of values"
            )
        space = cls(
            dimensions=tuple(_dimension(o, raw[n]) for n, o in searchable.items() if n in raw),
            strategy=str(params.get("search", "grid")),
            max_trials=int(params.get("max_trials", 16)),
            seed=int(params.get("search_seed", 0)),
        )
        if space.strategy not in STRATEGIES:
            raise SearchSpaceError(f"search must be one of {STRATEGIES}, not {space.strategy!r}")
        if not (1 <= space.max_trials <= MAX_MAP_LENGTH):
            raise SearchSpaceError(
                f"max_trials must be in 1..{MAX_MAP_LENGTH} ([core] max_map_length)"
            )
        return space

    @property
    def grid_size(self) -> int:
        return math.prod(len(d.values) for d in self.dimensions)


@dataclass(frozen=True)
class Trial:
    """One point of the search space, with its id."""

    trial_id: str
    values: dict[str, Any]  # dimension -> value, in the trainer's order


def _trial_id(index: int, space: SearchSpace, point: tuple[Any, ...]) -> str:
    parts = [f"t{index:02d}"]
    for dim, value in zip(space.dimensions, point, strict=True):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{dim.option.short}{text}")
    return "-".join(parts)


def plan_trials(space: SearchSpace, ds: str) -> list[Trial]:
    """The trials to run, in a stable order."""
    if space.strategy == "grid":
        ranges = [d.name for d in space.dimensions if d.is_range]
        if ranges:
            raise SearchSpaceError(
                f"search=grid needs a list of values for {', '.join(ranges)}, not a range: "
                "list the values, or set search='random' to sample the range"
            )
        if space.grid_size > space.max_trials:
            raise SearchSpaceError(
                f"the grid has {space.grid_size} trials "
                f"({' x '.join(d.name for d in space.dimensions)}) but max_trials is "
                f"{space.max_trials}: shrink a list, raise max_trials, or set search='random' "
                "to sample max_trials points"
            )
        points = list(itertools.product(*(d.values for d in space.dimensions)))
    else:
        digest = hashlib.sha256(f"{space.seed}:{ds}".encode()).hexdigest()
        rng = random.Random(int(digest[:16], 16))
        points, seen, attempts = [], set(), 0
        while len(points) < space.max_trials and attempts < space.max_trials * 50:
            attempts += 1
            point = tuple(d.draw(rng) for d in space.dimensions)
            if point not in seen:
                seen.add(point)
                points.append(point)
    names = [d.name for d in space.dimensions]
    return [
        Trial(_trial_id(i, space, point), dict(zip(names, point, strict=True)))
        for i, point in enumerate(points)
    ]


def train_arguments(
    trial: Trial,
    fixed: Mapping[str, Any],
    *,
    experiment: str,
    data_path: str,
    ds: str,
    run_id: str,
) -> list[str]:
    """`trainer train` arguments for one trial: the pipeline's own (data, experiment, date,
    trial id, checkpoint), the run's fixed options (`fixed`, from the Params), then the trial's
    point. Checkpoints are per DAG run and trial, so a retry resumes its own checkpoint and a
    rerun of the same date starts clean."""
    options = train_options()
    prefix = data_path if data_path.endswith("/") else data_path + "/"
    checkpoint = f"{prefix}checkpoints/{path_safe(run_id)}/{trial.trial_id}/"
    pipeline = {
        "data_path": prefix,
        "experiment_name": experiment,
        "checkpoint_uri": checkpoint,
        "date": ds,
        "trial_id": trial.trial_id,
    }
    values = {**pipeline, **{n: v for n, v in fixed.items() if n not in trial.values}}
    values.update(trial.values)
    return [arg for name, value in values.items() for arg in options[name].arguments(value)]


def mapped_trials(
    trials: list[Trial], fixed: Mapping[str, Any], **where: str
) -> list[dict[str, Any]]:
    """What `train_with_hp` is mapped over (`expand_kwargs`): each trial's id and arguments."""
    return [
        {"trial_id": t.trial_id, "arguments": train_arguments(t, fixed, **where)} for t in trials
    ]
