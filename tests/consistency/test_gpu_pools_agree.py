"""One definition of the GPU pools: the chart's `gpuPools` + `gpuTaint`
(charts/ml-platform/values.yaml). The DAG profiles and the kind cluster's GPU workers are
generated from it (test_generated_files.py); the hand-written parts checked here are the
kind overlay and CPU worker, and the sample EKS node groups and GKE node pools, which must each
belong to one chart pool and carry its labels, the taint and enough GPUs per node (their
machine types are cloud choices the chart does not know, so they are written by hand)."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest
import yaml
from consistency_support import (
    REPO,
    enabled_pools,
    load_yaml,
    taint_string,
)
from helm_chart import deep_merge

GPU_PRODUCT = "nvidia.com/gpu.product"
# What the NVIDIA stack (GPU Feature Discovery) reports for each instance / accelerator type.
EKS_INSTANCES = {
    "p4d.24xlarge": ("NVIDIA-A100-SXM4-40GB", 8),
    "p4de.24xlarge": ("NVIDIA-A100-SXM4-80GB", 8),
    "p5.4xlarge": ("NVIDIA-H100-80GB-HBM3", 1),
    "p5.48xlarge": ("NVIDIA-H100-80GB-HBM3", 8),
}
GKE_MACHINES = {
    **{f"a2-highgpu-{n}g": ("nvidia-tesla-a100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("nvidia-tesla-a100", 16),
    **{f"a2-ultragpu-{n}g": ("nvidia-a100-80gb", n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": ("nvidia-h100-80gb", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("nvidia-h100-mega-80gb", 8),
}
GKE_ACCELERATORS = {
    "nvidia-tesla-a100": "NVIDIA-A100-SXM4-40GB",
    "nvidia-a100-80gb": "NVIDIA-A100-SXM4-80GB",
    "nvidia-h100-80gb": "NVIDIA-H100-80GB-HBM3",
    "nvidia-h100-mega-80gb": "NVIDIA-H100-80GB-HBM3",
}


@pytest.fixture(scope="module")
def pools(values) -> dict[str, dict[str, Any]]:
    found = enabled_pools(values)
    assert found, "charts/ml-platform/values.yaml enables no GPU pool"
    return found


@pytest.fixture(scope="module")
def gpu_taint(values) -> dict[str, str]:
    return values["gpuTaint"]


def labels_match(node_labels: dict[str, str], pool: dict[str, Any]) -> bool:
    return all(node_labels.get(k) == v for k, v in pool["nodeLabels"].items())


def pool_of(node_labels: dict[str, str], pools: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, pool in pools.items() if labels_match(node_labels, pool)]


# ------------------------------------------------------------------ chart
def test_every_pool_selects_by_gpu_type_and_is_distinct(pools):
    label_sets = [tuple(sorted(p["nodeLabels"].items())) for p in pools.values()]
    assert len(set(label_sets)) == len(label_sets), "two pools select the same nodes"
    for name, pool in pools.items():
        assert pool["nodeLabels"].get("gpu-type") == name, (
            f"pool {name}: nodeLabels.gpu-type should be the pool name"
        )
        assert pool["gpusPerPod"] >= 1


def test_gpu_quota_admits_one_pod_of_every_pool(values, pools):
    if values.get("gpuQuota", {}).get("enabled"):
        assert values["gpuQuota"]["gpus"] >= max(p["gpusPerPod"] for p in pools.values())


# ------------------------------------------------------------------ kind
def kind_taints(node: dict[str, Any]) -> list[str]:
    taints = []
    for raw in node.get("kubeadmConfigPatches", []):
        patch = yaml.safe_load(raw)
        args = (patch.get("nodeRegistration") or {}).get("kubeletExtraArgs") or {}
        taints += [t for t in str(args.get("register-with-taints", "")).split(",") if t]
    return taints


def kind_workers(kind: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in kind["nodes"] if n["role"] == "worker"]


def test_kind_nodes_outside_the_pools_are_neither_tainted_nor_gpu_labelled(kind, pools):
    for node in kind_workers(kind):
        labels = node.get("labels") or {}
        if not pool_of(labels, pools):
            assert not kind_taints(node)
            assert "gpu-type" not in labels and "nvidia.com/gpu.count" not in labels


def test_kind_overlay_keeps_labels_taint_and_gpus_per_pod(values, kind):
    overlay = load_yaml(REPO / "k8s" / "values" / "kind.yaml", "the dev-loop part")
    merged = deep_merge(values, overlay)
    assert merged["gpuTaint"] == values["gpuTaint"]
    assert set(enabled_pools(merged)) == set(enabled_pools(values))
    for name, pool in enabled_pools(values).items():
        kind_pool = merged["gpuPools"][name]
        for key in ("nodeLabels", "gpusPerPod", "gpuProducts"):
            assert kind_pool[key] == pool[key], (
                f"k8s/values/kind.yaml changes gpuPools.{name}.{key}"
            )


# ------------------------------------------------------------------ EKS
def eks_gpu_groups(eks: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for g in eks["managedNodeGroups"] if "gpu-type" in (g.get("labels") or {})]


def test_every_eks_gpu_group_belongs_to_one_pool(eks, pools):
    # A pool without a node group is allowed: these cluster configs are samples (which GPUs a
    # cloud account gets is its own choice); docs/recipes.md says when to add one.
    for group in eks_gpu_groups(eks):
        assert len(pool_of(group["labels"], pools)) == 1, group["name"]


def test_eks_gpu_groups_carry_the_labels_taint_and_instance_gpus(eks, pools, gpu_taint):
    for group in eks_gpu_groups(eks):
        (name,) = pool_of(group["labels"], pools)
        pool = pools[name]
        assert group["taints"] == [gpu_taint], f"{group['name']}: taints"
        product, gpus = EKS_INSTANCES[group["instanceType"]]
        assert group["labels"][GPU_PRODUCT] == product, f"{group['name']}: product label"
        assert product in pool["gpuProducts"], (
            f"{group['instanceType']} GPUs are not a {name} product"
        )
        assert gpus >= pool["gpusPerPod"]
        tags = group["tags"]
        prefix = "k8s.io/cluster-autoscaler/node-template/"
        for key, value in pool["nodeLabels"].items():
            assert tags[f"{prefix}label/{key}"] == value
        assert (
            tags[f"{prefix}taint/{gpu_taint['key']}"]
            == f"{gpu_taint['value']}:{gpu_taint['effect']}"
        )
        assert tags[f"{prefix}resources/nvidia.com/gpu"] == str(gpus)


def test_eks_cpu_groups_are_untainted(eks):
    for group in eks["managedNodeGroups"]:
        if group not in eks_gpu_groups(eks):
            assert not group.get("taints"), f"{group['name']} would repel the Airflow pods"


# ------------------------------------------------------------------ GKE
def load_gke_script():
    spec = importlib.util.spec_from_file_location(
        "node_pools", REPO / "k8s" / "gke" / "node_pools.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_every_gke_node_pool_is_a_chart_pool(gke, pools):
    assert {p["pool"] for p in gke["nodePools"]} <= set(pools)


def test_gke_pools_carry_the_labels_taint_and_accelerators(gke, pools, gpu_taint):
    for node_pool in gke["nodePools"]:
        pool = pools[node_pool["pool"]]
        assert labels_match(node_pool["labels"], pool), node_pool["name"]
        assert node_pool["taints"] == [gpu_taint], node_pool["name"]
        accel = node_pool["accelerator"]
        assert GKE_MACHINES[node_pool["machineType"]] == (accel["type"], accel["count"]), (
            f"{node_pool['machineType']} does not come with {accel['count']} x {accel['type']}"
        )
        product = GKE_ACCELERATORS[accel["type"]]
        assert node_pool["labels"][GPU_PRODUCT] == product
        assert product in pool["gpuProducts"]
        assert accel["count"] >= pool["gpusPerPod"]


def test_gke_commands_pass_the_labels_and_the_taint(gke, pools, gpu_taint):
    script = load_gke_script()
    commands = script.commands(gke, project="p", with_cluster=True)
    pool_commands = [
        c for c in commands if c[:4] == ["gcloud", "container", "node-pools", "create"]
    ]
    assert len(pool_commands) == len(gke["nodePools"])
    for cmd, node_pool in zip(pool_commands, gke["nodePools"], strict=True):
        flags = dict(
            re.match(r"--([^=]+)=(.*)", a).groups() for a in cmd if a.startswith("--") and "=" in a
        )
        labels = dict(kv.split("=", 1) for kv in flags["node-labels"].split(","))
        assert labels_match(labels, pools[node_pool["pool"]])
        assert flags["node-taints"] == taint_string(gpu_taint)
        assert f"count={node_pool['accelerator']['count']}" in flags["accelerator"]
