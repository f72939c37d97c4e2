"""The pipeline's pods, as the DAGs build them, placed by the real kube-scheduler.

The DAGs are parsed in the `kubernetes` runtime against the installed release's own
`platform.json` (read from its ConfigMap in the API server), and every pod is the one the
KubernetesPodOperator's pod builder makes (`devstack.dag_pods`). The pods are then created in
the release's namespaces, where Pod Security admission, the GPU ResourceQuota and the Priority
admission plugin judge them, and the scheduler places them on the simulated pools.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import platform_config_of, wait_for
from devstack.dag_pods import TRAIN_TASK, TRAINING_DAG, build_pod, parse_pipeline, pod_manifest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

CPU_TASKS = [
    (TRAINING_DAG, "data_preparation.validate_data"),
    (TRAINING_DAG, "data_preparation.preprocess_data"),
    (TRAINING_DAG, "evaluate_model"),
    ("data_preprocessing_pipeline", "generate_features"),
]
# A pod that must hold its place (and its GPUs) while a test looks: kwok finishes it after 1 h.
LONG_RUNNING = {"pod-complete.stage.kwok.x-k8s.io/delay": "3600000"}


@pytest.fixture(scope="module")
def dags(cluster, platform, tmp_path_factory) -> Iterator[Any]:
    """The DAGs parsed with the installed release's platform config."""
    config = tmp_path_factory.mktemp("platform") / "platform.json"
    config.write_text(json.dumps(platform_config_of(cluster, platform)))
    with parse_pipeline("kubernetes", ML_PLATFORM_CONFIG=str(config)) as bag:
        assert not bag.import_errors, bag.import_errors
        yield bag.dags


@pytest.fixture
def created(core) -> Iterator[list[tuple[str, str]]]:
    """Pods a test created as (namespace, name); deleted, and waited for, afterwards."""
    pods: list[tuple[str, str]] = []
    yield pods
    for namespace, name in pods:
        try:
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for namespace, name in pods:
        wait_for(
            lambda ns=namespace, n=name: (
                core.list_namespaced_pod(ns, field_selector=f"metadata.name={n}").items
            ),
            lambda found: not found,
            what=f"pod {namespace}/{name} to be deleted",
        )


def _create(
    core, created: list, pod: Any, *, annotations: dict[str, str] | None = None, dry_run=False
):
    """Create the built pod under a unique name; returns the API server's copy."""
    manifest = pod_manifest(pod)
    meta = manifest["metadata"]
    meta["name"] = f"{meta['labels']['task_id'][:40]}-{uuid.uuid4().hex[:6]}".replace("_", "-")
    meta["annotations"] = {**(meta.get("annotations") or {}), **(annotations or {})}
    kwargs = {"dry_run": "All"} if dry_run else {}
    live = core.create_namespaced_pod(meta["namespace"], manifest, **kwargs)
    if not dry_run:
        created.append((meta["namespace"], meta["name"]))
    return live


def _bound(core, live) -> Any:
    return wait_for(
        lambda: core.read_namespaced_pod(live.metadata.name, live.metadata.namespace),
        lambda p: bool(p.spec.node_name),
        what=f"pod {live.metadata.name} to be scheduled",
    )


def _pool_nodes(core, node_labels: dict[str, str]) -> set[str]:
    selector = ",".join(f"{k}={v}" for k, v in node_labels.items())
    return {n.metadata.name for n in core.list_node(label_selector=selector).items}


@pytest.mark.parametrize("profile", ["a100", "h100"])
def test_sweep_trials_land_only_on_the_pool_of_their_profile(
    cluster, platform, dags, core, created, profile
):
    pool = platform_config_of(cluster, platform)["profiles"][profile]
    nodes = set()
    for _ in range(4):
        _, pod = build_pod(dags[TRAINING_DAG], TRAIN_TASK, gpu_profile=profile)
        live = _create(core, created, pod)
        nodes.add(_bound(core, live).spec.node_name)
    assert nodes <= _pool_nodes(core, pool["nodeLabels"]), f"{profile} trials ran on {nodes}"


@pytest.mark.parametrize(("dag_id", "task_id"), CPU_TASKS)
def test_cpu_tasks_never_land_on_gpu_nodes(dags, core, created, dag_id, task_id):
    _, pod = build_pod(dags[dag_id], task_id)
    node = _bound(core, _create(core, created, pod)).spec.node_name
    assert core.read_node(node).metadata.labels.get("gpu-type") is None, f"{task_id} on {node}"


def test_a_sweep_on_the_cpu_profile_stays_on_cpu_nodes(dags, core, created):
    _, pod = build_pod(dags[TRAINING_DAG], TRAIN_TASK, gpu_profile="cpu")
    node = _bound(core, _create(core, created, pod)).spec.node_name
    assert core.read_node(node).metadata.labels.get("gpu-type") is None


def test_deploy_model_runs_in_the_serving_namespace(platform, dags, core, created):
    _, pod = build_pod(dags[TRAINING_DAG], "deploy_model")
    live = _create(core, created, pod)
    assert live.metadata.namespace == platform.values["namespaces"]["serving"]
    wait_for(
        lambda: core.read_namespaced_pod(live.metadata.name, live.metadata.namespace),
        lambda p: p.status.phase in ("Running", "Succeeded"),
        what="deploy_model's pod to start",
    )


def test_gpu_pods_carry_the_priority_class_of_their_pool(cluster, dags, core, created):
    _, pod = build_pod(dags[TRAINING_DAG], TRAIN_TASK, gpu_profile="a100")
    live = _create(core, created, pod)
    priority_class = client.SchedulingV1Api(cluster.api_client()).read_priority_class(
        live.spec.priority_class_name
    )
    assert live.spec.priority == priority_class.value > 0  # resolved by the Priority plugin


def test_every_pipeline_pod_is_admitted_at_its_namespaces_level(platform, dags, core, created):
    """Server-side dry runs: Pod Security admission (and everything else) judges each pod."""
    checked = 0
    for dag in dags.values():
        for task in dag.tasks:
            if task.task_type != "TrainerPodOperator":
                continue
            profiles = ["a100", "h100", "cpu"] if task.task_id == TRAIN_TASK else [None]
            for profile in profiles:
                params = {"gpu_profile": profile} if profile else {}
                _, pod = build_pod(dag, task.task_id, **params)
                live = _create(core, created, pod, dry_run=True)
                level = core.read_namespace(live.metadata.namespace).metadata.labels.get(
                    "pod-security.kubernetes.io/enforce"
                )
                assert level == "restricted", f"{live.metadata.namespace} enforces {level}"
                checked += 1
    assert checked >= 8, f"only {checked} pod tasks found"


def test_a_trial_over_the_gpu_quota_is_refused_naming_the_quota(
    cluster, platform, dags, core, created
):
    training = platform.values["namespaces"]["training"]
    (quota,) = core.list_namespaced_resource_quota(training).items
    limit = int(quota.spec.hard["requests.nvidia.com/gpu"])
    _, pod = build_pod(dags[TRAINING_DAG], TRAIN_TASK, gpu_profile="h100")
    gpus_per_pod = int(pod.spec.containers[0].resources.requests["nvidia.com/gpu"])
    for _ in range(limit // gpus_per_pod):
        _create(core, created, pod, annotations=LONG_RUNNING)
    with pytest.raises(ApiException) as refused:
        _create(core, created, pod, annotations=LONG_RUNNING)
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 403
    assert f"exceeded quota: {quota.metadata.name}" in message, message
