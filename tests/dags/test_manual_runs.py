"""Manual runs: no logical date, the UI's "now", custom Params, invalid Params, and the
object-store connection id — rendered offline the way a worker renders them.

Airflow 3 gives a run triggered without a logical date (REST `"logical_date": null`,
`airflow dags trigger` without `-l`) a context with no `ds` at all; the UI's Trigger button
gives it the logical date "now". Both must read the partition of the right day, and the
ExternalTaskSensor must look for the producer run of that day (docs/pipeline.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dags_support import DAGS
from devstack.dag_pods import task_context

RUNTIMES = ("kubernetes", "local")
TRIGGERED = datetime(2031, 5, 2, 9, 30, 12, tzinfo=UTC)  # when a run without logical date ran
UI_NOW = datetime(2031, 5, 2, 14, 23, 5, tzinfo=UTC)  # the UI's default logical date: "now"


def _rendered(dag: Any, task_id: str, **context_args: Any) -> Any:
    task = dag.get_task(task_id)
    context = task_context(dag, task, **context_args)
    task.render_template_fields(context)
    return task, context


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_run_without_a_logical_date_reads_the_partition_of_the_day_it_was_triggered(
    parse_dags, runtime: str
) -> None:
    bag = parse_dags(runtime)
    training = bag.dags["ml_full_training_pipeline"]
    sensor, _ = _rendered(training, "wait_for_training_data", ds=None, run_after=TRIGGERED)
    assert sensor.bucket_key == "daily/2031-05-02/features.parquet"
    validate, _ = _rendered(
        training, "data_preparation.validate_data", ds=None, run_after=TRIGGERED
    )
    assert "s3://datasets/daily/2031-05-02/features.parquet" in validate.arguments
    producer = bag.dags["data_preprocessing_pipeline"]
    generate, _ = _rendered(producer, "generate_features", ds=None, run_after=TRIGGERED)
    assert generate.arguments[generate.arguments.index("--date") + 1] == "2031-05-02"


def test_a_ui_run_waits_for_the_producer_run_of_its_day_not_of_its_instant(parse_dags) -> None:
    training = parse_dags("kubernetes").dags["ml_full_training_pipeline"]
    sensor, context = _rendered(training, "wait_for_preprocessing", logical_date=UI_NOW)
    # the producer's @daily run of that day (or one triggered with that logical date)
    assert sensor._get_dttm_filter(context) == [datetime(2031, 5, 2, tzinfo=UTC)]
    s3, _ = _rendered(training, "wait_for_training_data", logical_date=UI_NOW)
    assert s3.bucket_key == "daily/2031-05-02/features.parquet"


def test_the_data_date_param_overrides_the_run_dates(parse_dags) -> None:
    training = parse_dags("kubernetes").dags["ml_full_training_pipeline"]
    sensor, context = _rendered(
        training, "wait_for_preprocessing", ds=None, run_after=TRIGGERED, data_date="2031-04-30"
    )
    assert sensor._get_dttm_filter(context) == [datetime(2031, 4, 30, tzinfo=UTC)]


def test_data_date_must_be_a_date(parse_dags) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    training = parse_dags("kubernetes").dags["ml_full_training_pipeline"]
    param = training.params.get_param("data_date")
    assert param.resolve(None) is None  # empty: the run's own date
    assert param.resolve("2031-04-30") == "2031-04-30"
    with pytest.raises(ParamValidationError):
        param.resolve("yesterday")


def _check(parse_dags, **params: Any) -> Any:
    training = parse_dags("local").dags["ml_full_training_pipeline"]
    task = training.get_task("check_params")
    context = task_context(training, task, ds=None, run_after=TRIGGERED, **params)
    return task.python_callable(**context)


def test_check_params_runs_before_anything_waits(parse_dags) -> None:
    training = parse_dags("kubernetes").dags["ml_full_training_pipeline"]
    assert training.get_task("check_params").upstream_task_ids == set()
    for sensor in ("wait_for_training_data", "wait_for_preprocessing"):
        assert training.get_task(sensor).upstream_task_ids == {"check_params"}


def test_check_params_reports_the_run_plan(parse_dags) -> None:
    plan = _check(
        parse_dags, search_space={"optimizer": ["adam"], "lr": [0.01], "batch_size": [64]}
    )
    assert plan == {"data_date": "2031-05-02", "trials": 1, "gpu_profile": "a100"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {
                "min_successful_trials": 5,
                "search_space": {"optimizer": ["adam"], "lr": [0.1, 0.2], "batch_size": [64]},
            },
            r"min_successful_trials is 5 but the search plans only 2 trials",
        ),
        (
            {
                "max_trials": 4,
                "search_space": {
                    "optimizer": ["adam", "sgd"],
                    "lr": [0.1, 0.2],
                    "batch_size": [8, 16],
                },
            },
            r"the grid has 8 trials .* max_trials is 4",
        ),
        (
            {
                "search_space": {
                    "optimizer": ["adam"],
                    "lr": {"min": 0.1, "max": 0.2},
                    "batch_size": [8],
                }
            },
            r"search=grid needs a list of values for lr",
        ),
        ({"training": {"epoch": 3}}, r"training has no option epoch"),
    ],
)
def test_invalid_params_fail_the_run_before_any_sensor_or_pod(
    parse_dags, params: dict[str, Any], message: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=message):
        _check(parse_dags, **params)


def test_the_object_store_connection_id_comes_from_the_platform_config(
    parse_dags, tmp_path: Path
) -> None:
    """The chart makes it configurable (`airflowIntegration.connectionId`)."""
    config = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())
    config["objectStoreConnectionId"] = "object_store"
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(config))
    for runtime in RUNTIMES:
        training = parse_dags(runtime, ML_PLATFORM_CONFIG=str(path)).dags[
            "ml_full_training_pipeline"
        ]
        assert training.get_task("wait_for_training_data").aws_conn_id == "object_store"
    from ml_pipeline.config import read_platform_config

    assert read_platform_config(path).object_store_conn_id == "object_store"
