"""The trainer's side of the pod-task contract (docs/CONTRACTS.md §4), shared by both runtimes.

A pod task is `trainer <command> <arguments>` with this environment; it writes one JSON
object to `$XCOM_RETURN_PATH`, which becomes the task's XCom. Credentials are not here:
in Kubernetes they come from the object-store Secret (`ml_pipeline.pods`), locally from
the environment the stack provides.
"""

from __future__ import annotations

from ml_pipeline.config import PlatformConfig, Profile

TRAINER_CLI = "trainer"
XCOM_RETURN_PATH_IN_POD = "/airflow/xcom/return.json"
TRAINER_COMMANDS = (
    "generate-data",
    "validate",
    "preprocess",
    "train",
    "evaluate",
    "deploy",
    "rollback",
)


def cuda_visible_devices(profile: Profile) -> str:
    """`0,1,…` for the GPUs the device plugin gave the pod; empty hides GPUs from CPU tasks."""
    return ",".join(str(i) for i in range(profile.gpus))


def trainer_env(cfg: PlatformConfig, profile: Profile, ds: str) -> dict[str, str]:
    """Plain (non-secret) environment of every trainer process, in both runtimes."""
    return {
        "MLFLOW_TRACKING_URI": cfg.tracking_uri(),
        "MLFLOW_EXPERIMENT_NAME": cfg.experiment,
        "AWS_ENDPOINT_URL": cfg.s3_endpoint(),
        "AWS_DEFAULT_REGION": cfg.s3_region,
        "CUDA_VISIBLE_DEVICES": cuda_visible_devices(profile),
        "DATA_DATE": ds,
        "ML_PLATFORM_PROFILE": profile.name,
        "PYTHONUNBUFFERED": "1",
    }
