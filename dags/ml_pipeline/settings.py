"""Every environment knob of the pipeline DAGs, read in this one place.

The DAG files never read `os.environ` themselves: they ask `pipeline_settings()`. Reading
environment variables is not I/O, so this is safe at parse time. Names and defaults:

| variable | default | what it does |
|---|---|---|
| `ML_PIPELINE_RUNTIME` | `kubernetes` | `kubernetes` → KubernetesPodOperator, `local` → local processes |
| `ML_PLATFORM_CONFIG` | unset | path of the chart-rendered `platform.json` (see `ml_pipeline.config`) |
| `ML_PIPELINE_SENSOR_POKE_SECONDS` | `60` | poke interval of both sensors |
| `ML_PIPELINE_SENSOR_TIMEOUT_SECONDS` | `21600` (6 h) | how long the sensors wait for upstream data |
| `ML_PIPELINE_DEFER_SENSORS` | `true` | the sensors defer to the triggerer; `false` reschedules instead (`ml_pipeline.local_run` sets it: `dag.test()` runs triggers inline, without their timeout) |
| `ML_PIPELINE_RETRIES` | `2` | `default_args["retries"]` |
| `ML_PIPELINE_RETRY_DELAY_SECONDS` | `120` | `default_args["retry_delay"]` |
| `ML_PIPELINE_MAX_PARALLEL_TRIALS` | `4` | `max_active_tis_per_dag` of `train_with_hp` (GPU quota) |
| `ML_PIPELINE_DEADLINE_MINUTES` | `360` | deadline alert: a run not done this long after queueing notifies |
| `ML_PIPELINE_WEBHOOK_CONN_ID` | `ml_pipeline_webhook` | Airflow connection holding the Slack-compatible webhook URL |
| `ML_PIPELINE_MLFLOW_UI_URL` | tracking URI | base URL of MLflow for the links in notifications |
| `ML_PIPELINE_LOCAL_COMMAND` | `<python> -m ml_trainer` | local runtime: the command prefix (shell words) |
| `ML_PIPELINE_LOCAL_WORKDIR` | system temp dir | local runtime: where each try's `return.json` folder is made |
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from functools import cache

RUNTIMES = ("kubernetes", "local")


class SettingsError(ValueError):
    """An environment variable holds a value the pipeline cannot use."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use true or false")


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not an integer; unset it or give a whole number"
        ) from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    return value


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's environment-derived settings (see the module docstring for the names)."""

    runtime: str
    config_path: str | None
    sensor_poke_seconds: int
    sensor_timeout_seconds: int
    defer_sensors: bool
    retries: int
    retry_delay_seconds: int
    max_parallel_trials: int
    deadline_minutes: int
    webhook_conn_id: str
    mlflow_ui_url: str | None
    local_command: tuple[str, ...]
    local_workdir: str | None

    @property
    def is_local(self) -> bool:
        return self.runtime == "local"


def read_settings() -> PipelineSettings:
    """Read the settings from the environment now (no caching; tests call this)."""
    runtime = os.environ.get("ML_PIPELINE_RUNTIME", "").strip().lower() or "kubernetes"
    if runtime not in RUNTIMES:
        raise SettingsError(
            f"ML_PIPELINE_RUNTIME={runtime!r} is not one of {RUNTIMES}; "
            "use `kubernetes` in a cluster or `local` with the embedded stack"
        )
    local_command = os.environ.get("ML_PIPELINE_LOCAL_COMMAND", "").strip()
    return PipelineSettings(
        runtime=runtime,
        config_path=os.environ.get("ML_PLATFORM_CONFIG") or None,
        sensor_poke_seconds=_int("ML_PIPELINE_SENSOR_POKE_SECONDS", 60, minimum=1),
        sensor_timeout_seconds=_int("ML_PIPELINE_SENSOR_TIMEOUT_SECONDS", 6 * 3600, minimum=1),
        defer_sensors=_bool("ML_PIPELINE_DEFER_SENSORS", True),
        retries=_int("ML_PIPELINE_RETRIES", 2),
        retry_delay_seconds=_int("ML_PIPELINE_RETRY_DELAY_SECONDS", 120),
        max_parallel_trials=_int("ML_PIPELINE_MAX_PARALLEL_TRIALS", 4, minimum=1),
        deadline_minutes=_int("ML_PIPELINE_DEADLINE_MINUTES", 360, minimum=1),
        webhook_conn_id=os.environ.get("ML_PIPELINE_WEBHOOK_CONN_ID") or "ml_pipeline_webhook",
        mlflow_ui_url=os.environ.get("ML_PIPELINE_MLFLOW_UI_URL") or None,
        local_command=(
            tuple(shlex.split(local_command))
            if local_command
            else (sys.executable, "-m", "ml_trainer")
        ),
        local_workdir=os.environ.get("ML_PIPELINE_LOCAL_WORKDIR") or None,
    )


@cache
def pipeline_settings() -> PipelineSettings:
    """The settings of this process (read once; `pipeline_settings.cache_clear()` re-reads)."""
    return read_settings()
