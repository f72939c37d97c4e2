"""What the DAGs share: their Params, default_args, sensor settings, the data-date macro.

The training DAG's Params come from the trainer's own option definitions
(`trainer_options.json`, `ml_pipeline.trainer`): the `search_space` schema lists the
hyperparameters the trainer marks searchable, the `training` object holds every other
`trainer train` option with a default (a conf may set only some; the others keep the trainer's
default), and `seed` and the gates take `train`'s, `validate`'s and `evaluate`'s defaults and
schemas. A new searched hyperparameter is one entry in the trainer's options; nothing here
changes.

**Why `with_params()`, and the `$schema`.** Airflow 3.3 deep-copies the DAG's Params into every
task it creates, then validates every copy's JSON schema (the schema against its meta-schema
first) at least twice per task while serializing the DAG: with these Params that was ~90 % of
the DAG processor's time for this DAG (`python -m bench dag_parse`). The task runner merges the
DAG's Params into every task's context anyway (`process_params`), so the DAGs give their Params
to the DAG after its tasks exist: the trigger form, the validation of a triggered run's conf and
`params` in every task are the same, the per-task copies are gone. And the schemas say they
are JSON Schema draft-07 (they use nothing newer): checking a schema against draft-07's
meta-schema costs a quarter of draft 2020-12's, Airflow's default.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param
from ml_pipeline.config import PipelineSettings, PlatformConfig
from ml_pipeline.run_context import DATA_DATE_PARAM, data_date
from ml_pipeline.search import (
    MAX_MAP_LENGTH,
    RUN_SEED,
    STRATEGIES,
    searchable_options,
    training_options,
)
from ml_pipeline.trainer import TrainerOption, trainer_commands

OWNER = "ml-platform"
# `{{ data_date(params, dag_run) }}` in templates (ml_pipeline.run_context.DATA_DATE).
MACROS = {"data_date": data_date}
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
# The daily search of a scheduled run (a triggered run may send another `search_space`).
DEFAULT_SEARCH_SPACE = {
    "optimizer": ["adam", "adamw"],
    "lr": [0.001, 0.003],
    "batch_size": [64, 128],
}


def param(default: Any, description: str, schema: Mapping[str, Any]) -> Param:
    """A Param with a draft-07 JSON schema."""
    return Param(default, description=description, schema={"$schema": JSON_SCHEMA_DRAFT, **schema})


def with_params(dag: DAG, params: Mapping[str, Param]) -> DAG:
    """Give the DAG its Params once its tasks exist (the module docstring says why). The DAG
    converts and validates them as it does in its constructor."""
    dag.params = dict(params)  # type: ignore[assignment]  # DAG's converter makes a ParamsDict
    return dag


def data_date_param() -> Param:
    return param(
        None,
        "The partition to process (YYYY-MM-DD). Empty: the day of the logical date, or of the "
        "trigger time when the run has no logical date.",
        {"type": ["null", "string"], "format": "date"},
    )


def option_param(command: str, option: TrainerOption) -> Param:
    """A Param for one trainer option: its schema, its default (null allowed when that is the
    default) and its help, with the flag it becomes."""
    schema = dict(option.schema)
    if option.default is None:
        schema["type"] = [schema["type"], "null"]
    return param(option.default, f"{option.help} (`trainer {command} {option.flag}`)", schema)


def search_space_schema() -> dict[str, Any]:
    """Dimension → a list of values (each valid for the trainer's option) or, for a number, a
    range {min, max, log}. Kept small (one shared range): Airflow checks it at every parse; the
    rules it cannot say (min <= max, a grid of lists only) are `check_params`'."""
    dimensions: dict[str, Any] = {}
    for name, option in searchable_options().items():
        values = {"type": "array", "items": option.schema}
        dimensions[name] = (
            {"anyOf": [values, {"$ref": "#/definitions/range"}]} if option.is_numeric else values
        )
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": dimensions,
        "definitions": {
            "range": {
                "type": "object",
                "required": ["min", "max"],
                "additionalProperties": False,
                "properties": {
                    "min": {"type": "number"},
                    "max": {"type": "number"},
                    "log": {"type": "boolean"},
                },
            }
        },
    }


def training_schema() -> dict[str, Any]:
    """Each fixed `trainer train` option and its schema (null where null is its default)."""
    properties = {}
    for name, option in training_options().items():
        schema = dict(option.schema)
        if option.default is None:
            schema["type"] = [schema["type"], "null"]
        properties[name] = schema
    return {"type": "object", "additionalProperties": False, "properties": properties}


def search_space_description() -> str:
    dims = ", ".join(
        f"{name}{' (required)' if o.required else ''}" for name, o in searchable_options().items()
    )
    return (
        f"Hyperparameters to search, each a list of values or, for a number, "
        f'{{"min": …, "max": …, "log": true}} (search=random only). Dimensions: {dims} — '
        "see `trainer train --help`. A dimension left out takes its Training option."
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
    timeout, so `devstack.local_run` turns deferral off (`ML_PIPELINE_DEFER_SENSORS=false`)
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
    """The training DAG's Params; their JSON schema validates a triggered run's conf."""
    commands = trainer_commands()
    return {
        DATA_DATE_PARAM: data_date_param(),
        "gpu_profile": param(
            cfg.default_training_profile,
            "Compute profile of the training pods (GPU pools from the platform config).",
            {"type": "string", "enum": sorted(cfg.profiles)},
        ),
        "search_space": param(
            DEFAULT_SEARCH_SPACE, search_space_description(), search_space_schema()
        ),
        "search": param(
            "grid",
            "grid: the cross product of the lists; random: max_trials sampled points.",
            {"type": "string", "enum": list(STRATEGIES)},
        ),
        "max_trials": param(
            16,
            "Trial budget (random) / cap on the grid; at most [core] max_map_length="
            f"{MAX_MAP_LENGTH}.",
            {"type": "integer", "minimum": 1, "maximum": MAX_MAP_LENGTH},
        ),
        "search_seed": param(0, "Seed of the random search.", {"type": "integer"}),
        "min_successful_trials": param(
            1,
            "select_best_model fails when fewer trials succeeded.",
            {"type": "integer", "minimum": 1, "maximum": MAX_MAP_LENGTH},
        ),
        "training": param(
            {name: o.default for name, o in training_options().items()},
            "`trainer train` options of every trial (see `trainer train --help`); leave one out "
            "for the trainer's default. A searched dimension overrides its option here.",
            training_schema(),
        ),
        RUN_SEED: option_param("train", commands.option("train", RUN_SEED)),
        "min_rows": option_param("validate", commands.option("validate", "min_rows")),
        "min_accuracy": option_param("evaluate", commands.option("evaluate", "min_accuracy")),
        "min_improvement": option_param("evaluate", commands.option("evaluate", "min_improvement")),
    }


def producer_params() -> dict[str, Param]:
    """The upstream DAG's Params (the demo's data knobs)."""
    commands = trainer_commands()
    return {
        DATA_DATE_PARAM: data_date_param(),
        "rows": param(
            1797,
            "Rows to land: 1797 = the digits set once; more are up-sampled with augmentation.",
            {"type": "integer", "minimum": 100, "maximum": 10_000_000},
        ),
        "drift": option_param("generate-data", commands.option("generate-data", "drift")),
        "seed": option_param("generate-data", commands.option("generate-data", "seed")),
    }
