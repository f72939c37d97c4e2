"""The cluster harness: control plane start-to-ready, the placement cost of a sweep's pods
through the real scheduler, and the harness's memory.

- `start_to_ready`: `Cluster.up()` on a fresh root (new certificates, empty etcd) until every
  simulated node is Ready and the default ServiceAccount exists; then a warm start (same root).
- `sweep_pods_per_s`: the pods of a 256-trial sweep, as the DAG builds them for the `a100`
  profile (KubernetesPodOperator's own pod builder), created one by one the way the operator
  creates them, until the scheduler has bound every one; pods/s and ms per trial. The harness
  gets 32 A100 nodes of 8 GPUs for it (256 GPUs), in a namespace without a quota.
- `rss`: resident memory of every harness process, idle and right after the sweep.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from devstack.cluster.harness import Cluster
from devstack.cluster.nodes import pool_nodes
from devstack.platform_names import load_platform_config

from bench.harness import Measurement

NAME = "cluster_harness"
TRIALS = 256
NAMESPACE = "bench-sweep"


def _rss_mib(cluster: Cluster) -> float:
    total = 0
    for server in cluster.state.servers.values():
        try:
            leader = psutil.Process(server.pid)
            processes = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    return total / 2**20


def _trial_pod() -> dict[str, Any]:
    """One `train_with_hp` pod for the a100 profile, exactly as the DAG builds it."""
    from devstack.dag_pods import TRAIN_TASK, build_pod, parse_pipeline, pod_manifest

    with parse_pipeline("kubernetes") as bag:
        _, pod = build_pod(bag.dags["ml_full_training_pipeline"], TRAIN_TASK, gpu_profile="a100")
    manifest = pod_manifest(pod)
    manifest["metadata"]["namespace"] = NAMESPACE
    return manifest


def _sweep(cluster: Cluster) -> tuple[float, float]:
    """(seconds to create all pods, seconds until all are bound)."""
    from kubernetes import client

    api = cluster.api_client()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    scheduling = client.SchedulingV1Api(api)
    scheduling.create_priority_class(
        {"metadata": {"name": "ml-training-gpu"}, "value": 100000, "preemptionPolicy": "Never"}
    )
    template = _trial_pod()
    account = template["spec"]["serviceAccountName"]  # what the chart creates for the pods
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": account}})
    started = time.perf_counter()
    for index in range(TRIALS):
        pod = {**template, "metadata": {**template["metadata"], "name": f"trial-{index:03d}"}}
        pod["metadata"]["labels"] = {**template["metadata"]["labels"], "map_index": str(index)}
        # Keep the pods running: a finished pod frees its GPU and would flatter the number.
        pod["metadata"]["annotations"] = {"pod-complete.stage.kwok.x-k8s.io/delay": "3600000"}
        core.create_namespaced_pod(NAMESPACE, pod)
    created = time.perf_counter() - started
    while True:
        pods = core.list_namespaced_pod(NAMESPACE).items
        if len(pods) == TRIALS and all(p.spec.node_name for p in pods):
            return created, time.perf_counter() - started
        if time.perf_counter() - started > 600:
            unbound = sum(1 for p in pods if not p.spec.node_name)
            raise RuntimeError(f"{unbound} of {TRIALS} pods still unbound after 10 minutes")
        time.sleep(0.2)


def run() -> list[Measurement]:
    platform = load_platform_config()
    a100_only = {**platform, "profiles": {k: platform["profiles"][k] for k in ("a100", "cpu")}}
    nodes = pool_nodes(a100_only, per_pool=TRIALS // 8)
    root = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cluster = Cluster(root, apiserver_port=None, nodes=nodes)
    try:
        started = time.perf_counter()
        cluster.up()
        cold = time.perf_counter() - started
        cold_steps = dict(cluster.timings)
        idle_rss = _rss_mib(cluster)
        created, bound = _sweep(cluster)
        busy_rss = _rss_mib(cluster)
        cluster.down()
        started = time.perf_counter()
        cluster.up()
        warm = time.perf_counter() - started
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)
    nodes_note = f"{len(nodes)} simulated nodes"
    return [
        Measurement(NAME, "start_to_ready_cold", cold, "s", notes=nodes_note, extra=cold_steps),
        Measurement(
            NAME, "start_to_ready_warm", warm, "s", notes="same root: certificates and etcd kept"
        ),
        Measurement(
            NAME,
            "sweep_pods_per_s",
            TRIALS / bound,
            "pods/s",
            notes=f"{TRIALS} a100 trial pods created and bound through kube-scheduler",
            extra={"create_s": round(created, 3), "bound_s": round(bound, 3)},
        ),
        Measurement(
            NAME, "placement_per_trial", 1000 * bound / TRIALS, "ms", notes="create + bind"
        ),
        Measurement(NAME, "rss_idle", idle_rss, "MiB", notes="every harness process"),
        Measurement(NAME, "rss_after_sweep", busy_rss, "MiB", notes=f"{TRIALS} pods running"),
    ]
