"""The pods KubernetesPodOperator would submit (kubernetes runtime), asserted field by field.

`build_pod_request_obj(context, dry_run=True)` builds the V1Pod offline (no kube config); a
mapped task is first expanded for one map index (`unmap`). The contexts are minimal: the
template fields that matter here only use `ds`, `params` and the task instance.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dags_support import DAGS
from devstack.dag_pods import DS, build_pod, task_context, train_arguments
from kubernetes.client import models as k8s

TRAIN_ARGS = train_arguments()
KPO_LABELS = {
    "dag_id",
    "task_id",
    "run_id",
    "kubernetes_pod_operator",
    "try_number",
    "airflow_version",
}


@pytest.fixture
def training_dag(parse_dags) -> Any:
    return parse_dags("kubernetes").dags["ml_full_training_pipeline"]


def base(pod: k8s.V1Pod) -> k8s.V1Container:
    (container,) = [c for c in pod.spec.containers if c.name == "base"]
    return container


def env_of(pod: k8s.V1Pod) -> dict[str, Any]:
    out = {}
    for var in base(pod).env:
        if var.value_from is not None:
            ref = var.value_from.secret_key_ref
            out[var.name] = ("secret", ref.name, ref.key)
        else:
            out[var.name] = var.value
    return out


def assert_restricted(pod: k8s.V1Pod) -> None:
    """The `restricted` Pod Security Standard, container by container (XCom sidecar included):
    the training and serving namespaces enforce it (charts/ml-platform namespacePodSecurity)."""
    pod_sc = pod.spec.security_context
    assert pod_sc.seccomp_profile.type == "RuntimeDefault"
    assert not (pod.spec.host_network or pod.spec.host_pid or pod.spec.host_ipc)
    assert all(v.host_path is None for v in pod.spec.volumes)
    for c in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        sc = c.security_context
        assert sc is not None, c.name
        assert sc.allow_privilege_escalation is False, c.name
        assert sc.capabilities.drop == ["ALL"] and not sc.capabilities.add, c.name
        assert not sc.privileged, c.name
        assert sc.run_as_non_root if sc.run_as_non_root is not None else pod_sc.run_as_non_root
        assert (sc.run_as_user if sc.run_as_user is not None else pod_sc.run_as_user) != 0


def assert_common(pod: k8s.V1Pod, *, command: str, namespace: str) -> None:
    container = base(pod)
    assert pod.metadata.namespace == namespace
    assert container.image == "ghcr.io/ml-platform/trainer:0.1.0"
    assert container.command == ["trainer", command]
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.termination_grace_period_seconds == 60
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert pod.spec.service_account_name == "ml-platform-pipeline"
    # volumes: only KPO's XCom emptyDir (the shared volume is off by default)
    assert [v.name for v in pod.spec.volumes] == ["xcom"]
    mounts = {m.name: m for m in container.volume_mounts}
    assert set(mounts) == {"xcom"}
    assert mounts["xcom"].mount_path == "/airflow/xcom"
    assert_restricted(pod)
    # env: the trainer contract; credentials only as secretKeyRefs (native V1 models)
    env = env_of(pod)
    assert env["MLFLOW_TRACKING_URI"] == "http://ml-platform-mlflow.ml-platform.svc:5000"
    assert env["AWS_ENDPOINT_URL"] == "http://ml-platform-minio.ml-platform.svc:9000"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["DATA_DATE"] == DS
    assert env["MLFLOW_EXPERIMENT_NAME"] == "ml-training-pipeline"
    # the audit trail: who (a scheduled run), which DAG version (unversioned here), which image
    assert env["DEPLOYED_BY"].startswith("scheduler via ")
    assert env["DEPLOYED_BY"].endswith(f"/scheduled__{DS}T00:00:00+00:00")
    assert env["GIT_SHA"] == ""
    assert env["IMAGE_TAG"] == "0.1.0"
    assert env["AWS_ACCESS_KEY_ID"] == ("secret", "ml-platform-object-store", "AWS_ACCESS_KEY_ID")
    assert env["AWS_SECRET_ACCESS_KEY"] == (
        "secret",
        "ml-platform-object-store",
        "AWS_SECRET_ACCESS_KEY",
    )
    assert not [v for v in container.env if v.value and "SECRET" in v.name]
    # labels: ours + the ones KPO uses to find the pod again
    labels = pod.metadata.labels
    assert labels["app.kubernetes.io/part-of"] == "ml-platform"
    assert labels["ml-platform/command"] == command
    assert set(labels) >= KPO_LABELS
    assert pod.spec.image_pull_secrets == []
    assert_xcom_sidecar(pod)


def assert_xcom_sidecar(
    pod: k8s.V1Pod, image: str = "alpine:3.24.2", cpu: str = "10m", mem: str = "16Mi"
):
    (sidecar,) = [c for c in pod.spec.containers if c.name == "airflow-xcom-sidecar"]
    assert sidecar.image == image
    resources = sidecar.resources
    assert resources.limits == {"cpu": cpu, "memory": mem}, "limits so it fits a ResourceQuota"
    assert resources.requests == resources.limits
    assert sidecar.security_context.run_as_non_root is True
    assert sidecar.security_context.allow_privilege_escalation is False


def assert_cpu_scheduling(pod: k8s.V1Pod) -> None:
    container = base(pod)
    assert container.resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert container.resources.limits == container.resources.requests
    assert pod.spec.tolerations == []
    assert pod.spec.node_selector == {}
    assert not pod.spec.affinity
    assert pod.spec.priority_class_name is None
    assert env_of(pod)["CUDA_VISIBLE_DEVICES"] == ""


def test_validate_data_pod(training_dag) -> None:
    task, pod = build_pod(training_dag, "data_preparation.validate_data")
    assert_common(pod, command="validate", namespace="ml-training")
    assert_cpu_scheduling(pod)
    assert base(pod).args == [
        "--input", f"s3://datasets/daily/{DS}/features.parquet", "--min-rows", "500",
    ]  # fmt: skip
    assert task.deferrable is False and task.do_xcom_push is True and task.get_logs is True
    assert task.on_finish_action.value == "delete_pod"
    assert task.retries == 1


def test_preprocess_data_pod(training_dag) -> None:
    _, pod = build_pod(training_dag, "data_preparation.preprocess_data")
    assert_common(pod, command="preprocess", namespace="ml-training")
    assert_cpu_scheduling(pod)
    assert base(pod).args == [
        "--input", f"s3://datasets/daily/{DS}/features.parquet",
        "--output-prefix", f"s3://processed/{DS}/",
        "--seed", "42",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "cpu", "memory", "gpu_type", "products"),
    [
        (
            "a100",
            "8",
            "32Gi",
            "a100",
            ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-80GB-PCIe"],
        ),
        ("h100", "12", "64Gi", "h100", ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"]),
    ],
)
def test_train_with_hp_pod_on_a_gpu_pool(
    training_dag, profile, cpu, memory, gpu_type, products
) -> None:
    task, pod = build_pod(training_dag, "hyperparameter_tuning.train_with_hp", gpu_profile=profile)
    assert_common(pod, command="train", namespace="ml-training")
    container = base(pod)
    assert container.args == TRAIN_ARGS  # mapped arguments arrive as given (not templated)
    amounts = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": "1"}
    assert container.resources.requests == amounts
    assert container.resources.limits == amounts  # GPUs are whole: requests = limits
    (toleration,) = pod.spec.tolerations
    assert (toleration.key, toleration.operator, toleration.effect) == (
        "nvidia.com/gpu",
        "Exists",
        "NoSchedule",
    )
    assert pod.spec.node_selector == {"gpu-type": gpu_type, "node-pool": "ml-training"}
    node_affinity = pod.spec.affinity.node_affinity
    (term,) = node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    (expr,) = term.match_expressions
    profiles = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())["profiles"]
    gpu_types = sorted(name for name, p in profiles.items() if p["gpus"] > 0)
    assert (expr.key, expr.operator, expr.values) == ("gpu-type", "In", gpu_types)
    (preferred,) = node_affinity.preferred_during_scheduling_ignored_during_execution
    (pexpr,) = preferred.preference.match_expressions
    assert (pexpr.key, pexpr.operator, pexpr.values) == ("nvidia.com/gpu.product", "In", products)
    assert pod.spec.priority_class_name == "ml-training-gpu"
    env = env_of(pod)
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["ML_PLATFORM_PROFILE"] == profile
    labels = pod.metadata.labels
    assert labels["ml-platform/profile"] == profile
    assert labels["map_index"] == "0"
    assert task.deferrable is True
    assert task.schedule_timeout_seconds == 20 * 60  # GPU node scale-up
    assert task.startup_timeout_seconds == 15 * 60  # CUDA image pull
    assert task.on_kill_action.value == "delete_pod"
    assert task.execution_timeout == timedelta(hours=4)


def test_train_with_hp_on_the_cpu_profile(training_dag) -> None:
    _, pod = build_pod(training_dag, "hyperparameter_tuning.train_with_hp", gpu_profile="cpu")
    assert_cpu_scheduling(pod)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("gpu_profile", "v100"),  # only the enabled pools (and cpu)
        ("search_space", {"lr": [0.0]}),  # the trainer's --lr: > 0
        ("search_space", {"batch_size": [0]}),
        ("search_space", {"optimizer": ["rmsprop"]}),  # the trainer's optimizer list
        ("search_space", {"lr": {"min": 0.1}}),  # a range needs min and max
        ("search_space", {"hidden": [64]}),  # not a searchable hyperparameter
        ("search", "bayes"),
        ("max_trials", 1025),  # [core] max_map_length
        ("training", {"hidden_sizes": "256,,256"}),
        ("training", {"epochs": 0}),
        ("training", {"epoch": 3}),
        ("min_accuracy", 1.5),
    ],
)
def test_params_reject_bad_values_by_json_schema(training_dag, name, bad) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    param = training_dag.params.get_param(name)
    param.resolve(param.value)  # the default is valid
    with pytest.raises(ParamValidationError):
        param.resolve(bad)


def test_evaluate_model_pod(training_dag) -> None:
    task, pod = build_pod(training_dag, "evaluate_model")
    assert_common(pod, command="evaluate", namespace="ml-training")
    assert_cpu_scheduling(pod)
    args = base(pod).args
    assert args[args.index("--run-id") + 1] == "run-abc123"  # from select_best_model's XCom
    assert args[args.index("--model-name") + 1] == "digits-classifier"
    assert args[args.index("--data-path") + 1] == f"s3://processed/{DS}/"
    assert args[args.index("--min-accuracy") + 1] == "0.9"
    assert args[args.index("--min-improvement") + 1] == "0.005"
    assert task.multiple_outputs is True


def test_deploy_model_pod_runs_in_the_serving_namespace(training_dag) -> None:
    _, pod = build_pod(training_dag, "deploy_model")
    assert_common(pod, command="deploy", namespace="ml-serving")
    assert_cpu_scheduling(pod)
    assert base(pod).args == [
        "--run-id", "run-abc123",
        "--model-name", "digits-classifier",
        "--data-path", f"s3://processed/{DS}/",
        "--reason", "candidate 0.9700 >= champion 0.9500 + 0.005",
    ]  # fmt: skip


def test_a_pod_of_a_run_without_a_logical_date_gets_the_trigger_day(training_dag) -> None:
    task = training_dag.get_task("evaluate_model")
    triggered = datetime(2031, 5, 2, 9, 30, tzinfo=UTC)
    context = task_context(training_dag, task, ds=None, run_after=triggered)
    task.render_template_fields(context)
    env = env_of(task.build_pod_request_obj(context, dry_run=True))
    assert env["DATA_DATE"] == "2031-05-02"
    assert env["DEPLOYED_BY"] == (
        f"admin via ml_full_training_pipeline/manual__{triggered.isoformat()}"
    )
    assert task.arguments[task.arguments.index("--data-path") + 1] == "s3://processed/2031-05-02/"


def test_generate_features_pod(parse_dags) -> None:
    dag = parse_dags("kubernetes").dags["data_preprocessing_pipeline"]
    _, pod = build_pod(dag, "generate_features", drift=0.25)
    assert_common(pod, command="generate-data", namespace="ml-training")
    assert_cpu_scheduling(pod)
    assert base(pod).args == [
        "--date", DS,
        "--output", f"s3://datasets/daily/{DS}/features.parquet",
        "--drift", "0.25",
        "--rows", "1797",
        "--seed", "0",
    ]  # fmt: skip


def test_platform_config_file_drives_names_and_pull_secrets(parse_dags, tmp_path: Path) -> None:
    data = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())
    data["images"]["trainer"] = "registry.example.com/ml/trainer:1.2.3"
    data["imagePullSecrets"] = ["regcred"]
    data["namespaces"]["training"] = "team-a-training"
    # disabled pools are absent
    data["profiles"] = {p: data["profiles"][p] for p in ("a100", "cpu")}
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(data))
    dag = parse_dags("kubernetes", ML_PLATFORM_CONFIG=str(path)).dags["ml_full_training_pipeline"]
    assert dag.params.get_param("gpu_profile").schema["enum"] == ["a100", "cpu"]
    _, pod = build_pod(dag, "hyperparameter_tuning.train_with_hp")
    assert base(pod).image == "registry.example.com/ml/trainer:1.2.3"
    assert [s.name for s in pod.spec.image_pull_secrets] == ["regcred"]
    assert pod.metadata.namespace == "team-a-training"
    expr = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    assert expr.node_selector_terms[0].match_expressions[0].values == ["a100"]


def config_file(tmp_path: Path, **changes: Any) -> str:
    """platform_defaults.json with some top-level keys replaced, as a file for ML_PLATFORM_CONFIG."""
    data = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())
    data.update(changes)
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(data))
    return str(path)


SHARED_VOLUME = {"claimName": "ml-shared-pvc", "mountPath": "/shared"}


@pytest.mark.parametrize(
    ("task_id", "read_only"),
    [
        ("data_preparation.validate_data", True),
        ("data_preparation.preprocess_data", False),  # the one task that writes it
        ("hyperparameter_tuning.train_with_hp", True),
        ("evaluate_model", True),
    ],
)
def test_enabled_shared_volume_is_mounted_by_the_training_namespace_tasks(
    parse_dags, tmp_path, task_id, read_only
) -> None:
    config = config_file(tmp_path, sharedVolume=SHARED_VOLUME)
    dag = parse_dags("kubernetes", ML_PLATFORM_CONFIG=config).dags["ml_full_training_pipeline"]
    _, pod = build_pod(dag, task_id)
    assert pod.metadata.namespace == "ml-training"
    volumes = {v.name: v for v in pod.spec.volumes}
    assert set(volumes) == {"shared", "xcom"}
    assert volumes["shared"].persistent_volume_claim.claim_name == "ml-shared-pvc"
    assert volumes["shared"].persistent_volume_claim.read_only is read_only
    mount = {m.name: m for m in base(pod).volume_mounts}["shared"]
    assert (mount.mount_path, bool(mount.read_only)) == ("/shared", read_only)
    # the trainer's read-through object cache lives on it; the trainer's group may write it
    assert env_of(pod)["ML_TRAINER_CACHE_DIR"] == "/shared/cache"
    assert pod.spec.security_context.fs_group == 1000
    assert_restricted(pod)


def test_deploy_model_never_mounts_the_shared_volume(parse_dags, tmp_path) -> None:
    """The claim exists in the training namespace only: a mount would keep the pod Pending."""
    config = config_file(tmp_path, sharedVolume=SHARED_VOLUME)
    dag = parse_dags("kubernetes", ML_PLATFORM_CONFIG=config).dags["ml_full_training_pipeline"]
    _, pod = build_pod(dag, "deploy_model")
    assert pod.metadata.namespace == "ml-serving"
    assert [v.name for v in pod.spec.volumes] == ["xcom"]
    assert "ML_TRAINER_CACHE_DIR" not in env_of(pod)


def test_workload_identity_pods_carry_no_static_keys(parse_dags, tmp_path) -> None:
    """externalS3.auth=workloadIdentity: no Secret refs; the ServiceAccount brings the identity."""
    config = config_file(tmp_path, objectStoreSecret=None, serviceAccountName="team-a-pipeline")
    dag = parse_dags("kubernetes", ML_PLATFORM_CONFIG=config).dags["ml_full_training_pipeline"]
    for task_id in ("data_preparation.preprocess_data", "deploy_model"):
        _, pod = build_pod(dag, task_id)
        env = env_of(pod)
        assert "AWS_ACCESS_KEY_ID" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert not [v for v in base(pod).env if v.value_from is not None]
        assert env["AWS_ENDPOINT_URL"] == "http://ml-platform-minio.ml-platform.svc:9000"
        assert pod.spec.service_account_name == "team-a-pipeline"


def test_mlflow_basic_auth_credentials_come_from_their_secret(parse_dags, tmp_path) -> None:
    secret = {
        "name": "ml-platform-mlflow-auth",
        "usernameKey": "MLFLOW_TRACKING_USERNAME",
        "passwordKey": "MLFLOW_TRACKING_PASSWORD",
    }
    config = config_file(tmp_path, mlflowAuthSecret=secret)
    dag = parse_dags("kubernetes", ML_PLATFORM_CONFIG=config).dags["ml_full_training_pipeline"]
    _, pod = build_pod(dag, "deploy_model")
    env = env_of(pod)
    assert env["MLFLOW_TRACKING_USERNAME"] == (
        "secret",
        "ml-platform-mlflow-auth",
        "MLFLOW_TRACKING_USERNAME",
    )
    assert env["MLFLOW_TRACKING_PASSWORD"] == (
        "secret",
        "ml-platform-mlflow-auth",
        "MLFLOW_TRACKING_PASSWORD",
    )
    assert env["AWS_ACCESS_KEY_ID"][0] == "secret"  # the object-store keys stay


def test_xcom_sidecar_honours_the_connection_extras(training_dag, monkeypatch) -> None:
    """The chart may set the sidecar's image/resources on `kubernetes_default`."""
    extras = {
        "xcom_sidecar_container_image": "registry.example.com/mirror/alpine:3.24.2",
        "xcom_sidecar_container_resources": json.dumps(
            {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"cpu": "5m", "memory": "8Mi"}}
        ),
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({"conn_type": "kubernetes", "extra": extras})
    )
    _, pod = build_pod(training_dag, "data_preparation.validate_data")
    assert_xcom_sidecar(pod, image="registry.example.com/mirror/alpine:3.24.2", cpu="5m", mem="8Mi")


def test_profile_must_exist_with_a_clear_message(training_dag) -> None:
    from ml_pipeline.config import PlatformConfigError

    task = training_dag.get_task("hyperparameter_tuning.train_with_hp").unmap(
        {"arguments": TRAIN_ARGS, "trial_id": "t00"}
    )
    context = task_context(training_dag, task, ds=DS, map_index=0)
    context["params"]["gpu_profile"] = "tpu"  # bypassing the Param schema (e.g. the REST API)
    with pytest.raises(PlatformConfigError, match=r"unknown compute profile 'tpu'.*enable a pool"):
        task.render_template_fields(context)  # before any pod is created


# --------------------------------------------------------------------- deferral and cleanup
def _deferred_training_task(training_dag) -> tuple[Any, dict[str, Any], Any]:
    from airflow.providers.common.compat.sdk import TaskDeferred

    task, pod = build_pod(training_dag, "hyperparameter_tuning.train_with_hp")
    context = task_context(training_dag, task, ds=DS, map_index=0)
    context["ti"].start_date = datetime.now(UTC)
    task.pod = pod
    with pytest.raises(TaskDeferred) as deferred:
        task.invoke_defer_method(context=context)
    return task, context, deferred.value


def test_deferred_training_hands_cleanup_to_the_trigger(training_dag) -> None:
    _, _, deferred = _deferred_training_task(training_dag)
    trigger = deferred.trigger
    assert type(trigger).__name__ == "KubernetesPodTrigger"
    assert trigger.pod_namespace == "ml-training"
    assert trigger.on_kill_action.value == "delete_pod"  # user kill while deferred
    assert trigger.on_finish_action.value == "delete_pod"
    assert trigger.schedule_timeout == 20 * 60 and trigger.startup_timeout == 15 * 60
    deadline = trigger.trigger_kwargs["_execution_deadline"]  # execution_timeout, in the trigger
    assert abs(deadline - (time.time() + 4 * 3600)) < 60
    # the framework's backstop (defer timeout) only fires after the trigger's own deadline
    assert deferred.timeout >= timedelta(hours=4)


# Killing a deferred task and its execution timeout delete the pod: proven against a real API
# server in tests/cluster/test_pod_operator.py.
