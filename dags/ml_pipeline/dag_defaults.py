"""What the DAGs share: default_args, sensor settings, Params, the data-date macro."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param
from ml_pipeline.config import PlatformConfig
from ml_pipeline.hyperparams import MAX_MAP_LENGTH, OPTIMIZERS
from ml_pipeline.run_context import DATA_DATE_PARAM, data_date
from ml_pipeline.settings import PipelineSettings

OWNER = "ml-platform"
# `{{ data_date(params, dag_run) }}` in templates (ml_pipeline.run_context.DATA_DATE).
MACROS = {"data_date": data_date}


def data_date_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        format="date",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description=(
            "The partition to process (YYYY-MM-DD). Empty: the day of the logical date, or "
            "of the trigger time when the run has no logical date."
        ),
    )


def default_args(settings: PipelineSettings) -> dict[str, Any]:
    return {
        "owner": OWNER,
        "retries": settings.retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "execution_timeout": timedelta(hours=1),
    }


def sensor_kwargs(settings: PipelineSettings, *, deferrable: bool) -> dict[str, Any]:
    """Poke interval and timeout from configuration.

    `deferrable` sensors wait in the triggerer (no worker slot), in a cluster and under the
    local stack's real Airflow alike. `dag.test()` runs triggers inline and ignores their
    timeout, so `ml_pipeline.local_run` turns deferral off (`ML_PIPELINE_DEFER_SENSORS=false`)
    and the sensors use `mode="reschedule"` instead (same task ids, same timeout semantics).
    """
    kwargs: dict[str, Any] = {
        "poke_interval": settings.sensor_poke_seconds,
        "timeout": settings.sensor_timeout_seconds,
        "retries": 0,  # a sensor that timed out waited long enough; retrying restarts the clock
    }
    if deferrable and settings.defer_sensors:
        kwargs["deferrable"] = True
    else:
        kwargs["mode"] = "reschedule"
        if deferrable:
            kwargs["deferrable"] = False
    return kwargs


def training_params(cfg: PlatformConfig) -> dict[str, Param]:
    """The training DAG's Params; their JSON schema validates a run triggered from the UI."""
    return {
        DATA_DATE_PARAM: data_date_param(),
        "gpu_profile": Param(
            cfg.default_training_profile,
            type="string",
            enum=sorted(cfg.profiles),
            description="Compute profile of the training pods (GPU pools from the platform config).",
        ),
        "learning_rates": Param(
            [0.001, 0.003],
            type="array",
            items={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            minItems=1,
            uniqueItems=True,
            description="Learning rates to search (grid) or the range to sample log-uniformly (random).",
        ),
        "batch_sizes": Param(
            [64, 128],
            type="array",
            items={"type": "integer", "minimum": 1, "maximum": 65536},
            minItems=1,
            uniqueItems=True,
            description="Batch sizes to search.",
        ),
        "optimizers": Param(
            ["adam", "adamw"],
            type="array",
            items={"type": "string", "enum": list(OPTIMIZERS)},
            minItems=1,
            uniqueItems=True,
            description="Optimizers to search.",
        ),
        "search": Param(
            "grid",
            type="string",
            enum=["grid", "random"],
            description="grid: the full cross product; random: max_trials sampled points.",
        ),
        "max_trials": Param(
            16,
            type="integer",
            minimum=1,
            maximum=MAX_MAP_LENGTH,
            description=f"Trial budget (random) / cap on the grid; at most [core] max_map_length={MAX_MAP_LENGTH}.",
        ),
        "search_seed": Param(0, type="integer", description="Seed of the random search."),
        "epochs": Param(
            20, type="integer", minimum=1, maximum=1000, description="Max epochs per trial."
        ),
        "patience": Param(
            3, type="integer", minimum=0, maximum=100, description="Early-stopping patience."
        ),
        "hidden_sizes": Param(
            "256,256",
            type="string",
            pattern="^[1-9][0-9]*(,[1-9][0-9]*)*$",
            description="MLP hidden layer sizes, comma separated.",
        ),
        "seed": Param(42, type="integer", minimum=0, description="Seed for splits and training."),
        "min_rows": Param(500, type="integer", minimum=1, description="validate: minimum rows."),
        "min_successful_trials": Param(
            1,
            type="integer",
            minimum=1,
            maximum=MAX_MAP_LENGTH,
            description="select_best_model fails when fewer trials succeeded.",
        ),
        "min_accuracy": Param(
            0.9, type="number", minimum=0, maximum=1, description="Deploy only at or above this."
        ),
        "min_improvement": Param(
            0.005,
            type="number",
            minimum=0,
            maximum=1,
            description="Deploy only when the candidate beats the champion by this much on the same test split.",
        ),
    }


def producer_params() -> dict[str, Param]:
    """The upstream DAG's Params (the demo's data knobs)."""
    return {
        DATA_DATE_PARAM: data_date_param(),
        "rows": Param(
            1797,
            type="integer",
            minimum=100,
            maximum=10_000_000,
            description="Rows to land: 1797 = the digits set once; more are up-sampled with augmentation.",
        ),
        "drift": Param(
            0.0,
            type="number",
            minimum=0,
            maximum=1,
            description="Drift to inject (label noise / covariate shift): a drifted day trains worse models.",
        ),
        "seed": Param(0, type="integer", minimum=0, description="Extra seed mixed with the date."),
    }
