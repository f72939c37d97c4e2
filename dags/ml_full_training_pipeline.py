"""
### ml_full_training_pipeline — daily training, sweep, evaluation against production, deploy

Wait for the day's data (two deferrable sensors) → validate and preprocess it → train one GPU
pod per trial of the search → pick the best → evaluate it against the `@champion` in MLflow →
deploy it or skip → notify. The task graph: the Graph tab, or `docs/pipeline.md`.

* **Data date**: the `data_date` Param, else the day of the logical date, else (a run
  triggered without one) the day it was triggered. `check_params` rejects impossible Params
  before anything waits or trains.
* **Data**: `datasets/daily/<data date>/features.parquet` (S3KeySensor) landed by
  `data_preprocessing_pipeline.final_validation` of that day (ExternalTaskSensor); both
  sensors wait in the triggerer (deferrable).
* **Pod tasks** run `trainer <command>` (docs/CONTRACTS.md §4) as KubernetesPodOperator pods —
  or as local processes when `ML_PIPELINE_RUNTIME=local` (same task ids and shape).
* **Sweep**: `train_with_hp` is mapped over the trials `generate_hyperparams` plans from the
  `search_space` Param (a grid of value lists, or `search=random` with `max_trials`), each with
  its id, on the GPU profile chosen by the `gpu_profile` Param; failed trials are tolerated down
  to `min_successful_trials`.
* **MLflow**: each trial tracks its own run; `evaluate_model` scores candidate and `@champion` on
  the same test split; `deploy_model` moves the `champion` alias (old one becomes `previous`).
* **Notifications** go to the Slack-compatible webhook in connection `ml_pipeline_webhook`.

Details, Params and troubleshooting: `docs/pipeline.md`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import (
    AsyncCallback,
    DeadlineAlert,
    DeadlineReference,
    TaskGroup,
    TriggerRule,
    dag,
    task,
)
from ml_pipeline.config import pipeline_settings, platform_config
from ml_pipeline.notify import FailureWebhookNotifier, deadline_missed
from ml_pipeline.params import MACROS, default_args, sensor_kwargs, training_params, with_params
from ml_pipeline.pod_tasks import mapped_pod_task, pod_task
from ml_pipeline.run_context import DATA_DATE, context_data_date, upstream_logical_date
from ml_pipeline.selection import BestTrial, allow_in_xcom

DAG_ID = "ml_full_training_pipeline"
UPSTREAM_DAG_ID = "data_preprocessing_pipeline"
UPSTREAM_TASK_ID = "final_validation"
# The producer's run of the data date is the one at 00:00 UTC of that day (its @daily run).
# Move the producer to another time of day and put the offset here.
UPSTREAM_OFFSET = timedelta(0)

cfg = platform_config()
settings = pipeline_settings()
allow_in_xcom()
log = logging.getLogger(__name__)

FEATURES_URI = cfg.features_uri(DATA_DATE)
PROCESSED_PREFIX = cfg.processed_prefix(DATA_DATE)
BEST_RUN_ID = "{{ ti.xcom_pull(task_ids='hyperparameter_tuning.select_best_model').run_id }}"


@dag(
    dag_id=DAG_ID,
    schedule="@daily",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(settings),
    dagrun_timeout=timedelta(hours=12),
    user_defined_macros=MACROS,
    tags=["ml", "training", "gpu", "mlflow"],
    doc_md=__doc__,
    on_failure_callback=FailureWebhookNotifier(),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=settings.deadline_minutes),
        callback=AsyncCallback(
            deadline_missed, kwargs={"dag_id": DAG_ID, "minutes": settings.deadline_minutes}
        ),
    ),
)
def ml_full_training_pipeline():
    @task
    def check_params(**context: Any) -> dict[str, Any]:
        """Reject Params no run could satisfy before any sensor waits or any pod starts (the
        JSON schema checks each Param's shape; these rules span values and Params). Fails
        without retries (AirflowFailException): the same Params stay invalid."""
        from airflow.sdk.exceptions import AirflowFailException
        from ml_pipeline.search import (
            SearchSpace,
            SearchSpaceError,
            plan_trials,
            run_training_options,
        )

        params, day = context["params"], context_data_date(context)
        try:
            cfg.profile(str(params["gpu_profile"]))
            run_training_options(params)
            trials = plan_trials(SearchSpace.from_params(params), day)
        except (SearchSpaceError, ValueError) as exc:
            raise AirflowFailException(f"invalid Params: {exc}") from None
        wanted = int(params["min_successful_trials"])
        if wanted > len(trials):
            raise AirflowFailException(
                f"invalid Params: min_successful_trials is {wanted} but the search plans only "
                f"{len(trials)} trials: lower min_successful_trials or widen the search"
            )
        log.info("data date %s: %d trials on %s", day, len(trials), params["gpu_profile"])
        return {"data_date": day, "trials": len(trials), "gpu_profile": params["gpu_profile"]}

    def producer_run_of_the_data_date(logical_date: datetime, **context: Any) -> datetime:
        return upstream_logical_date(logical_date, UPSTREAM_OFFSET, **context)

    checked = check_params()
    wait_for_training_data = S3KeySensor(
        task_id="wait_for_training_data",
        bucket_name=cfg.bucket("datasets"),
        bucket_key=cfg.features_key(DATA_DATE),
        aws_conn_id=cfg.object_store_conn_id,
        **sensor_kwargs(settings, deferrable=True),
    )
    wait_for_preprocessing = ExternalTaskSensor(
        task_id="wait_for_preprocessing",
        external_dag_id=UPSTREAM_DAG_ID,
        external_task_id=UPSTREAM_TASK_ID,
        allowed_states=["success"],
        failed_states=["failed", "upstream_failed"],
        execution_date_fn=producer_run_of_the_data_date,
        # Deferred, not rescheduled: Airflow 3.3's scheduler can fail a reschedule-mode sensor
        # whose previous poke's executor event it processes late (apache/airflow#71172).
        **sensor_kwargs(settings, deferrable=True),
    )
    checked >> [wait_for_training_data, wait_for_preprocessing]

    with TaskGroup("data_preparation", tooltip="validate the partition, then split and scale it"):
        validate_data = pod_task(
            "validate_data",
            "validate",
            ["--input", FEATURES_URI, "--min-rows", "{{ params.min_rows }}"],
            read_only_volume=True,
            retries=1,  # a bad partition stays bad; one retry covers a flaky object store
        )
        preprocess_data = pod_task(
            "preprocess_data",
            "preprocess",
            [
                "--input",
                FEATURES_URI,
                "--output-prefix",
                PROCESSED_PREFIX,
                "--seed",
                "{{ params.seed }}",
            ],
            read_only_volume=False,
        )
        validate_data >> preprocess_data

    @task
    def generate_hyperparams(prepared: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
        """One `{trial_id, arguments}` per trial: the `trainer train` arguments are rendered
        here (mapped arguments are not templated)."""
        from ml_pipeline.search import (
            SearchSpace,
            mapped_trials,
            plan_trials,
            run_training_options,
        )

        params, ds = context["params"], context_data_date(context)
        space = SearchSpace.from_params(params)
        trials = plan_trials(space, ds)
        log.info(
            "%s search: %d trials on profile %s", space.strategy, len(trials), params["gpu_profile"]
        )
        for trial in trials:
            log.info("  %s: %s", trial.trial_id, trial.values)
        return mapped_trials(
            trials,
            run_training_options(params),
            experiment=cfg.experiment,
            data_path=str(prepared["train_uri"]).rsplit("/", 1)[0] + "/",
            ds=ds,
            run_id=context["dag_run"].run_id,
        )

    planned_trials = generate_hyperparams(preprocess_data.output)

    with TaskGroup("hyperparameter_tuning", tooltip="one training pod per trial, then reduce"):
        train_with_hp = mapped_pod_task(
            "train_with_hp",
            "train",
            profile="{{ params.gpu_profile }}",
            read_only_volume=True,
            deferrable=True,  # frees the worker slot while the GPU pod trains
            max_active_tis_per_dag=settings.max_parallel_trials,
            execution_timeout=timedelta(hours=4),
            map_index_template="{{ task.trial_id }}",
        ).expand_kwargs(planned_trials)

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def select_best_model(results: Any, **context: Any) -> BestTrial:
            """Reduce the lazy sequence of trial results; tolerate failures down to a minimum."""
            from airflow.sdk.exceptions import AirflowFailException
            from ml_pipeline.selection import NotEnoughTrials, select_best

            planned = context["ti"].xcom_pull(task_ids="generate_hyperparams")
            if not planned:
                # Fail (not skip): a run whose data preparation failed must end failed, and
                # skipping here would leave only skipped leaves (a "successful" run).
                raise AirflowFailException(
                    "no trials ran: generate_hyperparams has no result because an upstream "
                    "task (check_params, a sensor or data_preparation) failed; see that task's log"
                )
            try:
                best = select_best(
                    results,
                    [trial["trial_id"] for trial in planned],
                    int(context["params"]["min_successful_trials"]),
                )
            except NotEnoughTrials as exc:
                raise AirflowFailException(str(exc)) from None  # no retry: results won't change
            log.info(
                "best of %d/%d trials: %s validation accuracy=%.4f run=%s",
                best.trials_succeeded,
                best.trials_planned,
                best.trial_id,
                best.val_accuracy,
                best.run_id,
            )
            return best

        best_model = select_best_model(train_with_hp.output)

    evaluate_model = pod_task(
        "evaluate_model",
        "evaluate",
        [
            "--run-id", BEST_RUN_ID,
            "--data-path", PROCESSED_PREFIX,
            "--model-name", cfg.model_name,
            "--min-accuracy", "{{ params.min_accuracy }}",
            "--min-improvement", "{{ params.min_improvement }}",
        ],
        multiple_outputs=True,
        read_only_volume=True,
    )  # fmt: skip
    best_model >> evaluate_model

    @task.branch
    def deployment_decision(should_deploy: bool, reason: str) -> str:
        log.info("should_deploy=%s: %s", should_deploy, reason)
        return "deploy_model" if should_deploy else "skip_deployment"

    decision = deployment_decision(
        evaluate_model.output["should_deploy"], evaluate_model.output["reason"]
    )

    deploy_model = pod_task(
        "deploy_model",
        "deploy",
        [
            "--run-id", BEST_RUN_ID,
            "--model-name", cfg.model_name,
            "--data-path", PROCESSED_PREFIX,
            "--reason", "{{ ti.xcom_pull(task_ids='evaluate_model', key='reason') }}",
        ],
        namespace="serving",
        read_only_volume=True,
    )  # fmt: skip

    @task
    def skip_deployment(evaluation: dict[str, Any]) -> dict[str, Any]:
        log.info("not deploying: %s", evaluation.get("reason"))
        return {"decision": "skip", "champion_version": evaluation.get("champion_version")}

    skipped = skip_deployment(evaluate_model.output)
    decision >> [deploy_model, skipped]

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def send_notification(
        best: BestTrial, evaluation: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        """Tell the channel what happened; returns the summary (read by `make demo`)."""
        from ml_pipeline.notify import build_summary, send_summary

        deployed = context["ti"].xcom_pull(task_ids="deploy_model")
        summary = build_summary(
            dag_id=context["dag"].dag_id,
            run_id=context["dag_run"].run_id,
            ds=context_data_date(context),
            best=best,
            evaluation=evaluation,
            deployed=deployed,
            model_name=cfg.model_name,
            tracking_uri=cfg.tracking_uri(),
            ui_url=settings.mlflow_ui_url,
        )
        send_summary(summary)
        return summary.to_dict()

    notification = send_notification(best_model, evaluate_model.output)
    [deploy_model, skipped] >> notification
    [wait_for_training_data, wait_for_preprocessing] >> validate_data


# Params after the tasks: Airflow would copy them into every task (ml_pipeline.params says why).
with_params(ml_full_training_pipeline(), training_params(cfg))
