"""DAG integrity: every DAG file imports cleanly in both runtimes and follows the house rules."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from dags_support import DAG_FILES, DAGS, REPO

EXPECTED_DAGS = {
    "data_preprocessing_pipeline.py": {"data_preprocessing_pipeline"},
    "ml_full_training_pipeline.py": {"ml_full_training_pipeline"},
    "ml_model_rollback.py": {"ml_model_rollback"},
}
ALL_DAG_IDS = {dag_id for ids in EXPECTED_DAGS.values() for dag_id in ids}
# Manual-only DAGs (operations); the others run @daily.
MANUAL_DAGS = {"ml_model_rollback"}
RUNTIMES = ("kubernetes", "local")


def test_every_dag_file_is_known() -> None:
    assert {p.name for p in DAG_FILES} == set(EXPECTED_DAGS)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_without_errors(parse_dags, dag_file: Path, runtime: str) -> None:
    bag = parse_dags(runtime, path=dag_file)
    assert bag.import_errors == {}, bag.import_errors
    assert set(bag.dag_ids) == EXPECTED_DAGS[dag_file.name]
    for dag in bag.dags.values():
        # DagBag rejects cycles at import; check again explicitly via a topological sort.
        assert len(dag.topological_sort()) == len(dag.tasks)


def test_support_package_is_not_parsed_as_dags(parse_dags) -> None:
    assert "ml_pipeline/" in (DAGS / ".airflowignore").read_text().split()
    bag = parse_dags("kubernetes")
    assert not [f for f in bag.file_last_changed if "/ml_pipeline/" in str(f)]
    assert set(bag.dag_ids) == ALL_DAG_IDS


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_house_rules_hold_for_every_dag(parse_dags, runtime: str) -> None:
    bag = parse_dags(runtime)
    for dag in bag.dags.values():
        assert dag.tags, f"{dag.dag_id}: tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag.dag_id}: doc_md"
        assert dag.catchup is False, f"{dag.dag_id}: catchup"
        assert dag.max_active_runs == 1, f"{dag.dag_id}: max_active_runs"
        schedule = None if dag.dag_id in MANUAL_DAGS else "@daily"
        assert dag.schedule == schedule, f"{dag.dag_id}: schedule"
        assert dag.start_date.tzinfo is not None, f"{dag.dag_id}: start_date must be tz-aware"
        assert dag.on_failure_callback, f"{dag.dag_id}: failure notification"
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.owner not in ("", "airflow"), f"{where}: owner"
            assert task.execution_timeout is not None, f"{where}: execution_timeout"
            assert task.execution_timeout <= timedelta(hours=4), f"{where}: execution_timeout"
            if task.task_id.startswith("wait_for_"):
                assert task.retries == 0, f"{where}: a sensor restarts its timeout on retry"
            else:
                assert task.retries >= 1, f"{where}: retries"
                assert task.retry_delay >= timedelta(seconds=0), f"{where}: retry_delay"


def _shape(dag) -> dict[str, tuple]:
    """What must not depend on the runtime: ids, edges, trigger rules, mapping, groups."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    return {
        t.task_id: (
            tuple(sorted(t.upstream_task_ids)),
            str(t.trigger_rule),
            isinstance(t, MappedOperator),
            t.retries,
            t.execution_timeout,
            getattr(t, "multiple_outputs", False),
            t.max_active_tis_per_dag,
        )
        for t in dag.tasks
    }


def test_both_runtimes_build_the_same_dag_shape(parse_dags) -> None:
    kube = parse_dags("kubernetes").dags
    local = parse_dags("local").dags
    assert kube.keys() == local.keys()
    for dag_id in kube:
        assert _shape(kube[dag_id]) == _shape(local[dag_id]), dag_id


def test_training_dag_structure(parse_dags) -> None:
    dag = parse_dags("kubernetes").dags["ml_full_training_pipeline"]
    up = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert up["data_preparation.validate_data"] == {
        "wait_for_training_data",
        "wait_for_preprocessing",
    }
    assert up["data_preparation.preprocess_data"] == {"data_preparation.validate_data"}
    assert up["generate_hyperparams"] == {"data_preparation.preprocess_data"}
    assert up["hyperparameter_tuning.train_with_hp"] == {"generate_hyperparams"}
    assert up["hyperparameter_tuning.select_best_model"] == {"hyperparameter_tuning.train_with_hp"}
    assert up["evaluate_model"] == {"hyperparameter_tuning.select_best_model"}
    assert up["deployment_decision"] == {"evaluate_model"}
    assert up["deploy_model"] == {"deployment_decision"}
    assert up["skip_deployment"] == {"deployment_decision", "evaluate_model"}
    assert up["send_notification"] == {
        "deploy_model",
        "skip_deployment",
        "evaluate_model",
        "hyperparameter_tuning.select_best_model",
    }
    rules = {t.task_id: t.trigger_rule for t in dag.tasks}
    assert rules["hyperparameter_tuning.select_best_model"] == "all_done"
    assert rules["send_notification"] == "none_failed_min_one_success"
    assert dag.get_task("evaluate_model").multiple_outputs is True
    assert dag.task_group.get_child_by_label("data_preparation")
    assert dag.task_group.get_child_by_label("hyperparameter_tuning")
    train = dag.get_task("hyperparameter_tuning.train_with_hp")
    assert train.max_active_tis_per_dag == 4
    assert train.map_index_template == "{{ task.trial_id }}"  # explicit, not an argument's place
    assert type(train.expand_input).__name__ == "ListOfDictsExpandInput"  # .expand_kwargs(...)
    (deadline,) = dag.deadline  # a deadline alert: Airflow 3's successor to SLAs
    assert deadline.interval == timedelta(minutes=360)
    assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
    assert deadline.callback.path == "ml_pipeline.notify.deadline_missed"
    assert type(deadline.callback).__name__ == "AsyncCallback"  # runs in the triggerer


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_params_belong_to_the_dag_and_reach_every_task(parse_dags, runtime) -> None:
    """The DAGs get their Params after their tasks (`ml_pipeline.params.with_params`): no task
    carries a copy (Airflow would validate every copy while serializing), and the task runner's
    merge gives every task the DAG's Params, a triggered run's conf validated against them."""
    from airflow.sdk.definitions.param import ParamValidationError, process_params

    dags = parse_dags(runtime).dags
    for dag in dags.values():
        assert dag.params, dag.dag_id
        assert [t.task_id for t in dag.tasks if t.params] == [], dag.dag_id
    training = dags["ml_full_training_pipeline"]
    task = training.get_task("data_preparation.preprocess_data")
    params = process_params(training, task, {"seed": 7}, suppress_exception=False)
    assert params["seed"] == 7 and params["search_space"]["optimizer"] == ["adam", "adamw"]
    with pytest.raises(ParamValidationError, match="training"):
        process_params(training, task, {"training": {"epochs": 0}}, suppress_exception=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_rollback_dag_runs_trainer_rollback_in_the_serving_namespace(parse_dags, runtime) -> None:
    """The operational entry point: a manual DAG with a Params form and its own message."""
    from devstack.dag_pods import task_context

    dag = parse_dags(runtime).dags["ml_model_rollback"]
    assert dag.schedule is None and dag.catchup is False
    assert set(dag.params) == {"model", "target_version", "reason"}
    assert dag.params["model"] == "digits-classifier"
    rollback = dag.get_task("rollback_model")
    assert rollback.namespace == "ml-serving"
    notify = dag.get_task("notify_rollback")
    assert notify.upstream_task_ids == {"rollback_model"}
    for target, expected in ((None, []), (3, ["--to-version", "3"])):
        task = copy.copy(dag.get_task("rollback_model"))  # rendering changes the task
        context = task_context(dag, task, target_version=target, reason="bad model")
        task.render_template_fields(context)
        assert task.arguments == [
            "--model-name", "digits-classifier", "--reason", "bad model", *expected,
        ]  # fmt: skip
    if runtime == "kubernetes":
        assert rollback.cmds == ["trainer", "rollback"]
    else:
        assert rollback.command == "rollback"


def test_sensors_follow_configuration(parse_dags) -> None:
    kube = parse_dags(
        "kubernetes", ML_PIPELINE_SENSOR_POKE_SECONDS="30", ML_PIPELINE_SENSOR_TIMEOUT_SECONDS="900"
    ).dags["ml_full_training_pipeline"]
    s3 = kube.get_task("wait_for_training_data")
    assert (s3.bucket_name, s3.bucket_key) == (
        "datasets",
        "daily/{{ data_date(params, dag_run) }}/features.parquet",
    )
    assert s3.deferrable is True
    assert s3.aws_conn_id == "aws_default"
    assert (s3.poke_interval, s3.timeout) == (30, 900)
    ext = kube.get_task("wait_for_preprocessing")
    assert (ext.external_dag_id, ext.external_task_ids) == (
        "data_preprocessing_pipeline",
        ["final_validation"],
    )
    assert ext.allowed_states == ["success"]
    assert ext.failed_states == ["failed", "upstream_failed"]
    assert ext.execution_date_fn is not None  # the producer run of the data date
    assert ext.deferrable is True
    assert (ext.poke_interval, ext.timeout) == (30, 900)
    # The local runtime under a real Airflow defers like the cluster does ...
    local = parse_dags("local").dags["ml_full_training_pipeline"]
    for sensor in ("wait_for_training_data", "wait_for_preprocessing"):
        assert local.get_task(sensor).deferrable is True
    # ... but dag.test() runs triggers inline without their timeout: there they reschedule.
    dag_test = parse_dags("local", ML_PIPELINE_DEFER_SENSORS="false").dags[
        "ml_full_training_pipeline"
    ]
    for sensor in ("wait_for_training_data", "wait_for_preprocessing"):
        assert dag_test.get_task(sensor).mode == "reschedule"
        assert dag_test.get_task(sensor).deferrable is False


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_dags_serialize_round_trip(parse_dags, runtime: str) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    for dag in parse_dags(runtime).dags.values():
        data = DagSerialization.serialize_dag(dag)
        back = DagSerialization.deserialize_dag(data)
        assert set(back.task_dict) == set(dag.task_dict)
        json.dumps(DagSerialization.to_dict(dag))  # what the DAG processor stores


PARSE_PROBE = """
import json, socket, sys
from airflow.dag_processing.dagbag import DagBag
def no_network(*args, **kwargs):
    raise RuntimeError(f"network access at parse time: {args}")
socket.socket.connect = no_network
socket.create_connection = no_network
bag = DagBag(sys.argv[1])
heavy = sorted(m for m in ("torch", "mlflow", "ml_trainer", "devstack", "pandas", "sklearn")
               if m in sys.modules)
print(json.dumps({"errors": bag.import_errors, "dags": sorted(bag.dag_ids), "heavy": heavy}))
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_parsing_needs_no_network_and_no_heavy_imports(tmp_path: Path, runtime: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(DAGS),
        "ML_PIPELINE_RUNTIME": runtime,
    }
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(DAGS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["dags"] == sorted(ALL_DAG_IDS)
    assert report["heavy"] == []


# What git-sync ships is dags/ only; the Airflow image has these (plus the stdlib;
# sqlalchemy and jinja2 come with Airflow itself).
ALLOWED_TOP_LEVEL = {
    "airflow",
    "kubernetes",
    "mlflow",
    "boto3",
    "botocore",
    "sqlalchemy",
    "jinja2",
    "ml_pipeline",
}


def test_support_package_imports_only_what_the_airflow_image_has() -> None:
    stdlib = set(sys.stdlib_module_names)
    offenders = []
    for path in [*(DAGS / "ml_pipeline").rglob("*.py"), *DAG_FILES]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ALLOWED_TOP_LEVEL and top != "__future__":
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []
