"""
Reference for `bench/dag_parse.py`: the reference design's training DAG, hand-written and
minimally ported to Airflow 3 (airflow.sdk imports, `schedule`, `on_finish_action`). Same
shape as `dags/ml_full_training_pipeline.py`: 2 sensors, 2 groups, 5 pod tasks (one mapped),
TaskFlow tasks, a branch. Every V1 object is written inline, nothing is shared or read from
configuration. Not a product DAG: it is not under `dags/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, TaskGroup, task
from kubernetes.client import models as k8s

default_args = {
    "owner": "ml-team",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=4),
}

gpu_resources = k8s.V1ResourceRequirements(
    requests={"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
    limits={"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
)
cpu_resources = k8s.V1ResourceRequirements(
    requests={"cpu": "1", "memory": "2Gi"}, limits={"cpu": "1", "memory": "2Gi"}
)
gpu_tolerations = [k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
gpu_affinity = k8s.V1Affinity(
    node_affinity=k8s.V1NodeAffinity(
        required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
            node_selector_terms=[
                k8s.V1NodeSelectorTerm(
                    match_expressions=[
                        k8s.V1NodeSelectorRequirement(
                            key="gpu-type", operator="In", values=["a100", "h100"]
                        )
                    ]
                )
            ]
        )
    )
)
volume = k8s.V1Volume(
    name="shared",
    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name="ml-shared-pvc"),
)
volume_mount = k8s.V1VolumeMount(name="shared", mount_path="/shared")
env_vars = [
    k8s.V1EnvVar(name="MLFLOW_TRACKING_URI", value="http://mlflow.mlflow.svc:5000"),
    k8s.V1EnvVar(name="CUDA_VISIBLE_DEVICES", value="0"),
    k8s.V1EnvVar(name="DATA_DATE", value="{{ ds }}"),
    k8s.V1EnvVar(
        name="AWS_ACCESS_KEY_ID",
        value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name="s3-credentials", key="access-key")
        ),
    ),
    k8s.V1EnvVar(
        name="AWS_SECRET_ACCESS_KEY",
        value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name="s3-credentials", key="secret-key")
        ),
    ),
]
common = {
    "namespace": "ml-training",
    "image": "ghcr.io/ml-platform/trainer:0.1.0",
    "volumes": [volume],
    "volume_mounts": [volume_mount],
    "env_vars": env_vars,
    "image_pull_secrets": [k8s.V1LocalObjectReference(name="registry")],
    "get_logs": True,
    "on_finish_action": "delete_pod",
    "do_xcom_push": True,
}

with DAG(
    dag_id="ml_training_reference",
    default_args=default_args,
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["ml", "reference"],
) as dag:
    wait_for_data = S3KeySensor(
        task_id="wait_for_training_data",
        bucket_name="datasets",
        bucket_key="daily/{{ ds }}/features.parquet",
        deferrable=True,
        poke_interval=300,
        timeout=3600 * 6,
    )
    wait_for_upstream = ExternalTaskSensor(
        task_id="wait_for_preprocessing",
        external_dag_id="data_preprocessing_pipeline",
        external_task_id="final_validation",
        allowed_states=["success"],
        execution_delta=timedelta(hours=0),
        mode="reschedule",
        timeout=3600 * 6,
    )

    with TaskGroup("data_preparation") as data_preparation:
        validate_data = KubernetesPodOperator(
            task_id="validate_data",
            name="validate-data",
            cmds=["python", "validate.py"],
            arguments=["--date", "{{ ds }}"],
            container_resources=cpu_resources,
            **common,
        )
        preprocess_data = KubernetesPodOperator(
            task_id="preprocess_data",
            name="preprocess-data",
            cmds=["python", "preprocess.py"],
            arguments=["--date", "{{ ds }}"],
            container_resources=cpu_resources,
            **common,
        )
        validate_data >> preprocess_data

    @task
    def generate_hyperparams() -> list[list[str]]:
        return [
            ["--lr", str(lr), "--batch-size", str(bs), "--optimizer", opt]
            for lr in (0.001, 0.01)
            for bs in (64, 128)
            for opt in ("adam", "sgd")
        ]

    with TaskGroup("hyperparameter_tuning") as hyperparameter_tuning:
        train = KubernetesPodOperator.partial(
            task_id="train_with_hp",
            name="train-with-hp",
            cmds=["python", "train.py"],
            container_resources=gpu_resources,
            tolerations=gpu_tolerations,
            node_selector={"gpu-type": "a100", "node-pool": "ml-training"},
            affinity=gpu_affinity,
            startup_timeout_seconds=900,
            deferrable=True,
            max_active_tis_per_dag=4,
            **common,
        ).expand(arguments=generate_hyperparams())

        @task(trigger_rule="all_done")
        def select_best_model(results) -> dict:
            return max((r for r in results if r), key=lambda r: r["accuracy"])

        best = select_best_model(train.output)

    evaluate_model = KubernetesPodOperator(
        task_id="evaluate_model",
        name="evaluate-model",
        cmds=["python", "evaluate.py"],
        arguments=[
            "--run-id",
            "{{ ti.xcom_pull(task_ids='hyperparameter_tuning.select_best_model')['run_id'] }}",
        ],
        container_resources=cpu_resources,
        multiple_outputs=True,
        **common,
    )
    best >> evaluate_model

    @task.branch
    def deployment_decision(should_deploy: bool) -> str:
        return "deploy_model" if should_deploy else "skip_deployment"

    deploy_model = KubernetesPodOperator(
        task_id="deploy_model",
        name="deploy-model",
        cmds=["python", "deploy.py"],
        arguments=["--run-id", "{{ ti.xcom_pull(task_ids='evaluate_model', key='run_id') }}"],
        container_resources=cpu_resources,
        **{**common, "namespace": "ml-serving"},
    )
    skip_deployment = EmptyOperator(task_id="skip_deployment")

    @task(trigger_rule="none_failed_min_one_success")
    def send_notification() -> None:
        print("done")

    decision = deployment_decision(evaluate_model.output["should_deploy"])
    decision >> [deploy_model, skip_deployment] >> send_notification()
    [wait_for_data, wait_for_upstream] >> data_preparation
