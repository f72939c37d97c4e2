"""Pod tasks: `trainer <command> <arguments>` as one task, in either runtime (CONTRACTS §4, §6).

    validate = pod_task("validate_data", "validate", ["--input", uri])
    train = mapped_pod_task("train_with_hp", "train", profile="{{ params.gpu_profile }}")
    train.expand_kwargs(generate_hyperparams(...))

`ML_PIPELINE_RUNTIME=kubernetes` (default) builds a `TrainerPodOperator` (a real
KubernetesPodOperator, below); `local` builds a `LocalTrainerOperator`
(`ml_pipeline.local_runtime`). Task ids, arguments, retries, timeouts, trigger rules and
mapping are the same in both, so the DAG's shape does not depend on where it runs. Only the
runtime-specific knobs differ (pod scheduling timeouts, deferral) and they are set here.

**The pod** (`kubernetes` runtime). The profile (`a100`, `h100`, `cpu`) is a template field, so a
DAG Param can choose it per run; everything that depends on it or on the platform config is
built from native V1 models when the task renders its templates and again, idempotently, when
the pod is built (`build_pod_request_obj`): resources (requests = limits, `nvidia.com/gpu` for
GPU pools), the GPU taint toleration, node selector and affinity, priority class, the optional
shared volume (training namespace only), the trainer's environment (object-store and MLflow
credentials as `secretKeyRef`s, never values; none with workload identity), the ServiceAccount,
image pull secrets, labels, the `restricted` security contexts (XCom sidecar included) and the
sidecar's resources, so the pod fits a namespace ResourceQuota.

Deferrable pods and cleanup (provider 10.25 on Airflow 3.3, checked in the source and in
`tests/dags/test_pod_specs.py`): the task defers to `KubernetesPodTrigger` with
`on_finish_action="delete_pod"` and `on_kill_action="delete_pod"`. A user kill of the
deferred task (mark failed/success, clear) makes the triggerer call the trigger's
`on_kill()`, which deletes the pod. `execution_timeout` becomes `_execution_deadline` in the
trigger: at the deadline the trigger emits a `timeout` event and the task resumes, fails
and deletes the pod in its cleanup. A triggerer *restart* deletes nothing (the pod keeps
running and the new triggerer resumes watching it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s
from ml_pipeline.config import (
    PlatformConfig,
    Profile,
    SecretEnv,
    SharedVolume,
    pipeline_settings,
    platform_config,
)
from ml_pipeline.run_context import DATA_DATE, audit_env, context_data_date
from ml_pipeline.trainer import TRAINER_CLI, trainer_commands, trainer_env

if TYPE_CHECKING:
    from collections.abc import Iterable

    import jinja2
    from airflow.sdk import Context

# ------------------------------------------------------------------------------ the factory
# Scheduling a pod onto a GPU pool can wait for the cluster autoscaler to add a node
# (5-10 min on EKS/GKE) and then pull a multi-GB CUDA image: size the timeouts for that.
GPU_SCHEDULE_TIMEOUT_S = 20 * 60
GPU_STARTUP_TIMEOUT_S = 15 * 60
CPU_SCHEDULE_TIMEOUT_S = 10 * 60
CPU_STARTUP_TIMEOUT_S = 5 * 60
TERMINATION_GRACE_S = 60


def _common(task_id: str, command: str, profile: str, namespace_role: str) -> dict[str, Any]:
    commands = trainer_commands().names
    if command not in commands:
        raise ValueError(f"unknown trainer command {command!r}; one of {commands}")
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
        from ml_pipeline.local_runtime import LocalTrainerOperator

        return LocalTrainerOperator(command=command, **kwargs)
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
    """`.partial(...)` of the pod task; call `.expand_kwargs(…)` on the result with one
    `{"arguments": [...], "trial_id": …}` per instance (`ml_pipeline.search.mapped_trials`)."""
    kwargs = {
        **_common(task_id, command, profile, namespace),
        "execution_timeout": execution_timeout,
        **operator_kwargs,
    }
    if pipeline_settings().is_local:
        from ml_pipeline.local_runtime import LocalTrainerOperator

        return LocalTrainerOperator.partial(command=command, **kwargs)
    return TrainerPodOperator.partial(
        cmds=[TRAINER_CLI, command],
        **_kubernetes_kwargs(profile, read_only_volume, deferrable),
        **kwargs,
    )


# ------------------------------------------------------------------- the kubernetes runtime
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TYPE_LABEL = "gpu-type"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by GPU Feature Discovery
SHARED_VOLUME_NAME = "shared"
# The trainer's read-through object cache on the shared volume (ml_trainer.storage).
CACHE_DIR_ENV = "ML_TRAINER_CACHE_DIR"
# The trainer image's user and group (images/trainer/Dockerfile): the group owns the volumes.
TRAINER_GID = 1000

# The XCom sidecar only sleeps until KPO reads /airflow/xcom/return.json. Provider 10.25
# gives it requests (1m CPU, 10Mi) but no limits, which a namespace ResourceQuota on
# `limits.*` rejects. Connection extras of `kubernetes_default`
# (`xcom_sidecar_container_image`, `xcom_sidecar_container_resources`) win when set.
XCOM_SIDECAR_NAME = "airflow-xcom-sidecar"
XCOM_SIDECAR_RESOURCES = {"cpu": "10m", "memory": "16Mi"}

PART_OF = "ml-platform"


def resources(profile: Profile) -> k8s.V1ResourceRequirements:
    """Requests = limits (Guaranteed QoS); GPUs are whole devices, so they must be equal."""
    amounts = {"cpu": profile.cpu, "memory": profile.memory}
    if profile.is_gpu:
        amounts[GPU_RESOURCE] = str(profile.gpus)
    return k8s.V1ResourceRequirements(requests=dict(amounts), limits=dict(amounts))


def tolerations(cfg: PlatformConfig, profile: Profile) -> list[k8s.V1Toleration]:
    """GPU pods tolerate the one GPU taint (`Exists`, so any taint value matches)."""
    if not profile.is_gpu:
        return []
    return [k8s.V1Toleration(key=cfg.gpu_taint.key, operator="Exists", effect=cfg.gpu_taint.effect)]


def node_selector(profile: Profile) -> dict[str, str]:
    return dict(profile.node_labels)


def affinity(cfg: PlatformConfig, profile: Profile) -> k8s.V1Affinity | None:
    """GPU pods: required `gpu-type In [<every enabled GPU pool>]` (never a CPU node), and a
    preferred `nvidia.com/gpu.product In [...]` (soft: only clusters with GPU Feature
    Discovery label products). The node selector pins the exact pool."""
    if not profile.is_gpu:
        return None
    gpu_types = sorted(
        {p.node_labels.get(GPU_TYPE_LABEL, p.name) for p in cfg.profiles.values() if p.is_gpu}
    )
    required = k8s.V1NodeSelector(
        node_selector_terms=[
            k8s.V1NodeSelectorTerm(
                match_expressions=[
                    k8s.V1NodeSelectorRequirement(
                        key=GPU_TYPE_LABEL, operator="In", values=gpu_types
                    )
                ]
            )
        ]
    )
    preferred = None
    if profile.gpu_products:
        preferred = [
            k8s.V1PreferredSchedulingTerm(
                weight=100,
                preference=k8s.V1NodeSelectorTerm(
                    match_expressions=[
                        k8s.V1NodeSelectorRequirement(
                            key=GPU_PRODUCT_LABEL, operator="In", values=list(profile.gpu_products)
                        )
                    ]
                ),
            )
        ]
    return k8s.V1Affinity(
        node_affinity=k8s.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=required,
            preferred_during_scheduling_ignored_during_execution=preferred,
        )
    )


def shared_volume(volume: SharedVolume, *, read_only: bool) -> k8s.V1Volume:
    return k8s.V1Volume(
        name=SHARED_VOLUME_NAME,
        persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name=volume.claim_name, read_only=read_only
        ),
    )


def shared_volume_mount(volume: SharedVolume, *, read_only: bool) -> k8s.V1VolumeMount:
    return k8s.V1VolumeMount(
        name=SHARED_VOLUME_NAME, mount_path=volume.mount_path, read_only=read_only
    )


def cache_dir(volume: SharedVolume) -> str:
    return volume.mount_path.rstrip("/") + "/cache"


def env_vars(
    cfg: PlatformConfig, profile: Profile, ds: str, *, volume: SharedVolume | None = None
) -> list[k8s.V1EnvVar]:
    """The trainer's environment contract: plain values (with the object cache on the shared
    volume when the pod mounts it), then credentials from the Secrets the platform names."""
    plain = dict(trainer_env(cfg, profile, ds))
    if volume is not None:
        plain[CACHE_DIR_ENV] = cache_dir(volume)
    return [
        *(k8s.V1EnvVar(name=k, value=v) for k, v in plain.items()),
        *secret_env_vars(cfg.object_store_secret),
        *secret_env_vars(cfg.mlflow_auth_secret),
    ]


def secret_env_vars(secret: SecretEnv | None) -> list[k8s.V1EnvVar]:
    """A Secret's keys as `valueFrom.secretKeyRef` (values never enter Airflow); none for None."""
    if secret is None:
        return []
    return [
        k8s.V1EnvVar(
            name=env_name,
            value_from=k8s.V1EnvVarSource(
                secret_key_ref=k8s.V1SecretKeySelector(name=secret.name, key=key)
            ),
        )
        for env_name, key in secret.env.items()
    ]


def image_pull_secrets(cfg: PlatformConfig) -> list[k8s.V1LocalObjectReference]:
    return [k8s.V1LocalObjectReference(name=name) for name in cfg.image_pull_secrets]


def labels(command: str, profile: Profile) -> dict[str, str]:
    """Labels our own (KubernetesPodOperator adds dag_id, task_id, run_id, try_number, map_index)."""
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": "trainer",
        "ml-platform/command": command,
        "ml-platform/profile": profile.name,
    }


def container_security_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def pod_security_context() -> k8s.V1PodSecurityContext:
    """`restricted`: non-root (the image's numeric user), RuntimeDefault seccomp; the trainer's
    group owns the mounted volumes, so the shared volume is writable where it is mounted so."""
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        fs_group=TRAINER_GID,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def sidecar_security_context() -> k8s.V1SecurityContext:
    """The sidecar runs `sh` and `sleep` from alpine: no root, no privileges needed."""
    return k8s.V1SecurityContext(
        run_as_user=65534,
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def fit_xcom_sidecar(pod: k8s.V1Pod) -> k8s.V1Pod:
    """Give the XCom sidecar limits (= requests) unless the connection already set limits."""
    for container in pod.spec.containers or []:
        if container.name != XCOM_SIDECAR_NAME:
            continue
        res = container.resources
        if isinstance(res, dict):
            res = k8s.V1ResourceRequirements(requests=res.get("requests"), limits=res.get("limits"))
        if res is None or not res.limits:
            container.resources = k8s.V1ResourceRequirements(
                requests=dict(XCOM_SIDECAR_RESOURCES), limits=dict(XCOM_SIDECAR_RESOURCES)
            )
        else:
            container.resources = res
    return pod


class TrainerPodOperator(KubernetesPodOperator):
    """KubernetesPodOperator running `trainer <command>` on a compute profile.

    Parsing the DAG builds no Kubernetes objects: the operator keeps the profile name and
    the volume mode, and `apply_platform()` sets the V1 objects from the platform config
    when the task renders its templates (so the rendered fields in the UI show them) and
    again, idempotently, when the pod is built.

    :param profile: compute profile name (templated, e.g. ``"{{ params.gpu_profile }}"``).
    :param read_only_volume: mount the shared volume read-only (the task only reads it). The
        volume is mounted only when the platform enables it and only in the training namespace
        (the PVC exists there alone: the deploy step in the serving namespace never mounts it).
    :param trial_id: the trial a mapped training instance runs (its map index label).
    """

    template_fields = (*KubernetesPodOperator.template_fields, "profile")

    def __init__(
        self,
        *,
        profile: str,
        read_only_volume: bool = True,
        trial_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.profile = profile
        self.read_only_volume = read_only_volume
        self.trial_id = trial_id

    def apply_platform(self, context: Context | None = None) -> None:
        """Set every config- and profile-dependent pod field (idempotent)."""
        cfg = platform_config()
        profile = cfg.profile(self.profile)
        volume = cfg.shared_volume if self.namespace == cfg.namespaces["training"] else None
        self.container_resources = resources(profile)
        self.node_selector = node_selector(profile)
        self.tolerations = tolerations(cfg, profile)
        self.affinity = affinity(cfg, profile) or {}
        self.priority_class_name = profile.priority_class_name
        self.service_account_name = cfg.service_account_name
        if context is None:  # a dry run outside any DAG run: the date stays a template
            self.env_vars = env_vars(cfg, profile, DATA_DATE, volume=volume)
        else:
            self.env_vars = env_vars(cfg, profile, context_data_date(context), volume=volume) + [
                k8s.V1EnvVar(name=k, value=v) for k, v in audit_env(cfg, context).items()
            ]
        if volume is None:
            self.volumes, self.volume_mounts = [], []
        else:
            ro = self.read_only_volume
            self.volumes = [shared_volume(volume, read_only=ro)]
            self.volume_mounts = [shared_volume_mount(volume, read_only=ro)]
        self.image_pull_secrets = image_pull_secrets(cfg)
        self.security_context = pod_security_context()
        self.container_security_context = container_security_context()
        self.xcom_sidecar_container_security_context = sidecar_security_context()
        self.labels = {**self.labels, **labels(self.cmds[-1], profile)}

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Mapped or not, rendering a task goes through here with parent=self (KPO hooks its
        # env-var conversion here for the same reason): render the profile, then apply it.
        if parent is self:
            self.profile = self.render_template(self.profile, context, jinja_env)
            self.apply_platform(context)
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def build_pod_request_obj(
        self, context: Context | None = None, *, dry_run: bool = False
    ) -> k8s.V1Pod:
        self.apply_platform(context)
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        return fit_xcom_sidecar(pod)
