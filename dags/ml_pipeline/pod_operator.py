"""The `kubernetes` runtime's pod task: a KubernetesPodOperator that takes a compute profile.

The profile (`a100`, `h100`, `cpu`) is a template field, so a DAG Param can choose it per
run; everything that depends on it — resources, tolerations, node selector, affinity,
priority class, `CUDA_VISIBLE_DEVICES` — is applied from the platform config when the pod
is built (`build_pod_request_obj`), after rendering. The XCom sidecar gets limits so the
pod fits a namespace ResourceQuota (`ml_pipeline.pods.fit_xcom_sidecar`).

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

from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s
from ml_pipeline import pods
from ml_pipeline.config import platform_config
from ml_pipeline.run_context import DATA_DATE, audit_env, context_data_date

if TYPE_CHECKING:
    from collections.abc import Iterable

    import jinja2
    from airflow.sdk import Context


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
    """

    template_fields = (*KubernetesPodOperator.template_fields, "profile")

    def __init__(self, *, profile: str, read_only_volume: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.profile = profile
        self.read_only_volume = read_only_volume

    def apply_platform(self, context: Context | None = None) -> None:
        """Set every config- and profile-dependent pod field (idempotent)."""
        cfg = platform_config()
        profile = cfg.profile(self.profile)
        volume = cfg.shared_volume if self.namespace == cfg.namespaces["training"] else None
        self.container_resources = pods.resources(profile)
        self.node_selector = pods.node_selector(profile)
        self.tolerations = pods.tolerations(cfg, profile)
        self.affinity = pods.affinity(cfg, profile) or {}
        self.priority_class_name = profile.priority_class_name
        self.service_account_name = cfg.service_account_name
        if context is None:  # a dry run outside any DAG run: the date stays a template
            self.env_vars = pods.env_vars(cfg, profile, DATA_DATE, volume=volume)
        else:
            self.env_vars = pods.env_vars(
                cfg, profile, context_data_date(context), volume=volume
            ) + [k8s.V1EnvVar(name=k, value=v) for k, v in audit_env(cfg, context).items()]
        if volume is None:
            self.volumes, self.volume_mounts = [], []
        else:
            ro = self.read_only_volume
            self.volumes = [pods.shared_volume(volume, read_only=ro)]
            self.volume_mounts = [pods.shared_volume_mount(volume, read_only=ro)]
        self.image_pull_secrets = pods.image_pull_secrets(cfg)
        self.security_context = pods.pod_security_context()
        self.container_security_context = pods.container_security_context()
        self.xcom_sidecar_container_security_context = pods.sidecar_security_context()
        self.labels = {**self.labels, **pods.labels(self.cmds[-1], profile)}

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
        return pods.fit_xcom_sidecar(pod)
