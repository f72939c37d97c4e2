"""The pod-task factory: one declaration, two runtimes (docs/CONTRACTS.md §6).

    validate = pod_task("validate_data", "validate", ["--input", uri])
    train = mapped_pod_task("train_with_hp", "train", profile="{{ params.gpu_profile }}")
    train.expand(arguments=generate_hyperparams(...))

`ML_PIPELINE_RUNTIME=kubernetes` (default) builds a `TrainerPodOperator` (a real
KubernetesPodOperator); `local` builds a `LocalTrainerOperator`. Task ids, arguments,
retries, timeouts, trigger rules and mapping are the same in both, so the DAG's shape does
not depend on where it runs. Only the runtime-specific knobs differ (pod scheduling
timeouts, deferral) and they are set here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ml_pipeline.config import platform_config
from ml_pipeline.contract import TRAINER_CLI, TRAINER_COMMANDS
from ml_pipeline.settings import pipeline_settings

# Scheduling a pod onto a GPU pool can wait for the cluster autoscaler to add a node
# (5-10 min on EKS/GKE) and then pull a multi-GB CUDA image: size the timeouts for that.
GPU_SCHEDULE_TIMEOUT_S = 20 * 60
GPU_STARTUP_TIMEOUT_S = 15 * 60
CPU_SCHEDULE_TIMEOUT_S = 10 * 60
CPU_STARTUP_TIMEOUT_S = 5 * 60
TERMINATION_GRACE_S = 60


def _common(task_id: str, command: str, profile: str, namespace_role: str) -> dict[str, Any]:
    if command not in TRAINER_COMMANDS:
        raise ValueError(f"unknown trainer command {command!r}; one of {TRAINER_COMMANDS}")
    cfg = platform_config()
    try:
        namespace = cfg.namespaces[namespace_role]
    except KeyError:
        raise ValueError(
            f"no namespace for role {namespace_role!r} in {cfg.source}: {sorted(cfg.namespaces)}"
        ) from None
    return {"task_id": task_id, "profile": profile, "namespace": namespace}


def _kubernetes_kwargs(profile: str, read_only_volume: bool, deferrable: bool) -> dict[str, Any]:
    """Plain values only: the V1 objects are built when the task runs (TrainerPodOperator)."""
    gpu_like = profile != "cpu"  # a templated profile is the GPU training task
    return {
        "image": platform_config().trainer_image,
        "read_only_volume": read_only_volume,
        "get_logs": True,
        "log_events_on_failure": True,
        "do_xcom_push": True,
        "on_finish_action": "delete_pod",
        "on_kill_action": "delete_pod",
        "termination_grace_period": TERMINATION_GRACE_S,
        "schedule_timeout_seconds": GPU_SCHEDULE_TIMEOUT_S if gpu_like else CPU_SCHEDULE_TIMEOUT_S,
        "startup_timeout_seconds": GPU_STARTUP_TIMEOUT_S if gpu_like else CPU_STARTUP_TIMEOUT_S,
        "deferrable": deferrable,
        "poll_interval": 10,
    }


def pod_task(
    task_id: str,
    command: str,
    arguments: list[Any] | None = None,
    *,
    profile: str = "cpu",
    namespace: str = "training",
    read_only_volume: bool = True,
    deferrable: bool = False,
    execution_timeout: timedelta = timedelta(minutes=30),
    **operator_kwargs: Any,
):
    """A pod task running `trainer <command> <arguments>` in the configured runtime."""
    kwargs = {
        **_common(task_id, command, profile, namespace),
        "arguments": arguments or [],
        "execution_timeout": execution_timeout,
        **operator_kwargs,
    }
    if pipeline_settings().is_local:
        from ml_pipeline.local_operator import LocalTrainerOperator

        return LocalTrainerOperator(command=command, **kwargs)
    from ml_pipeline.pod_operator import TrainerPodOperator

    return TrainerPodOperator(
        cmds=[TRAINER_CLI, command],
        **_kubernetes_kwargs(profile, read_only_volume, deferrable),
        **kwargs,
    )


def mapped_pod_task(
    task_id: str,
    command: str,
    *,
    profile: str = "cpu",
    namespace: str = "training",
    read_only_volume: bool = True,
    deferrable: bool = False,
    execution_timeout: timedelta = timedelta(minutes=30),
    **operator_kwargs: Any,
):
    """`.partial(...)` of the pod task; call `.expand(arguments=…)` on the result."""
    kwargs = {
        **_common(task_id, command, profile, namespace),
        "execution_timeout": execution_timeout,
        **operator_kwargs,
    }
    if pipeline_settings().is_local:
        from ml_pipeline.local_operator import LocalTrainerOperator

        return LocalTrainerOperator.partial(command=command, **kwargs)
    from ml_pipeline.pod_operator import TrainerPodOperator

    return TrainerPodOperator.partial(
        cmds=[TRAINER_CLI, command],
        **_kubernetes_kwargs(profile, read_only_volume, deferrable),
        **kwargs,
    )
