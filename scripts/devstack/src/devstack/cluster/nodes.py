"""Simulated nodes, built from the platform config's profiles and GPU taint.

The pools are read from `dags/ml_pipeline/platform_defaults.json`, which helm renders from the
chart's `gpuPools`, `gpuTaint` and `cpuProfile` (`devstack.platform_names`), so the harness's
nodes carry exactly the labels, GPU capacity and taint that the chart, the DAG's pod specs and
the taint reconciler expect:

- `cpu-0` … : the CPU pool (the `cpu` profile's node labels), no GPUs, no taint;
- `<pool>-0` … per enabled GPU pool: its `nodeLabels`, `nvidia.com/gpu.present=true`, the first
  `gpuProducts` entry as `nvidia.com/gpu.product`, `nvidia.com/gpu` capacity and the GPU taint;
- `<first pool>-untainted`: a GPU node that lost its taint (what the reconciler must repair).
  It is cordoned, so no test pod lands on it by accident before the taint is back.

kwok manages every node carrying its annotation: it reports them Ready and renews their leases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.cluster.control_plane import KWOK_NODE_ANNOTATION
from devstack.platform_names import gpu_profiles, load_platform_config

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Shapes of one node (like an 8-GPU p4d/p5 or a2/a3 machine, and a general-purpose CPU node).
GPU_NODE_CAPACITY = {"cpu": "96", "memory": "1Ti", "pods": "110", GPU_RESOURCE: "8"}
CPU_NODE_CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110"}


@dataclass(frozen=True)
class SimulatedNode:
    name: str
    labels: dict[str, str]
    capacity: dict[str, str]
    taints: list[dict[str, str]] = field(default_factory=list)
    unschedulable: bool = False

    @property
    def gpus(self) -> int:
        return int(self.capacity.get(GPU_RESOURCE, "0"))

    def manifest(self) -> dict[str, Any]:
        key, value = KWOK_NODE_ANNOTATION
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            **self.labels,
        }
        spec: dict[str, Any] = {"taints": list(self.taints)}
        if self.unschedulable:
            spec["unschedulable"] = True
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels, "annotations": {key: value}},
            "spec": spec,
            "status": {"capacity": dict(self.capacity), "allocatable": dict(self.capacity)},
        }


def gpu_taint(platform: Mapping[str, Any]) -> dict[str, str]:
    taint = platform["gpuTaint"]
    return {"key": taint["key"], "value": taint["value"], "effect": taint["effect"]}


def pool_nodes(
    platform: Mapping[str, Any] | None = None, *, per_pool: int = 2, cpu_nodes: int = 1
) -> list[SimulatedNode]:
    """The harness's standing nodes: CPU pool, each GPU pool, one untainted GPU node."""
    platform = platform if platform is not None else load_platform_config()
    cpu_labels = {
        str(k): str(v) for k, v in (platform["profiles"]["cpu"].get("nodeLabels") or {}).items()
    }
    nodes = [
        SimulatedNode(f"cpu-{i}", dict(cpu_labels), dict(CPU_NODE_CAPACITY))
        for i in range(cpu_nodes)
    ]
    taint = gpu_taint(platform)
    pools = gpu_profiles(platform)
    for name, pool in pools.items():
        for i in range(per_pool):
            nodes.append(gpu_node(f"{name}-{i}", pool, taints=[taint]))
    if pools:
        first_name, first_pool = next(iter(pools.items()))
        nodes.append(gpu_node(f"{first_name}-untainted", first_pool, taints=[], unschedulable=True))
    return nodes


def gpu_node(
    name: str,
    pool: Mapping[str, Any],
    *,
    taints: list[dict[str, str]],
    unschedulable: bool = False,
) -> SimulatedNode:
    labels = {str(k): str(v) for k, v in (pool.get("nodeLabels") or {}).items()}
    labels[GPU_PRESENT_LABEL] = "true"
    products = pool.get("gpuProducts") or []
    if products:
        labels[GPU_PRODUCT_LABEL] = str(products[0])
    return SimulatedNode(name, labels, dict(GPU_NODE_CAPACITY), taints, unschedulable)
