"""The one place that turns a compute profile into Kubernetes objects (native V1 models).

Every pod-task knob that depends on the profile or the platform config is built here:
resources (requests = limits, `nvidia.com/gpu` for GPU pools), the GPU taint toleration,
node selector and affinity, the optional shared volume (training namespace only), the
trainer's environment (object-store and MLflow credentials as `secretKeyRef`s, never values;
none with workload identity), the ServiceAccount, image pull secrets, labels, the `restricted`
security contexts (XCom sidecar included) and the sidecar's resources. `trainer_env()` is also
what the local runtime passes to its processes, so both runtimes share one environment contract.

Only imported in the `kubernetes` runtime (the kubernetes client is imported here).
"""

from __future__ import annotations

from kubernetes.client import models as k8s
from ml_pipeline.config import PlatformConfig, Profile, SecretEnv, SharedVolume
from ml_pipeline.contract import trainer_env

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
