#!/usr/bin/env python3
"""Advertise fake ``nvidia.com/gpu`` capacity on the kind cluster's GPU-like nodes.

kind nodes have no GPUs and run no NVIDIA device plugin, so a pod that requests
``nvidia.com/gpu`` would stay Pending forever. This script does what the Kubernetes task
"Advertise Extended Resources for a Node" describes: a JSON patch on the Node's *status*
subresource that adds ``nvidia.com/gpu`` to ``status.capacity`` (and ``status.allocatable``,
so the scheduler sees it at once instead of at the kubelet's next status update).

Which nodes, and how many GPUs: every node labelled ``nvidia.com/gpu.count`` (the label GPU
Feature Discovery sets on real nodes; k8s/kind/cluster.yaml sets it on the two GPU-like
workers), with that many GPUs. The pods scheduled there run the CPU trainer image: the
"GPU" is a scheduling fiction that lets the A100/H100 profiles, taints and quotas be
exercised on a laptop.

The kubelet zeroes unknown extended resources when it re-registers (e.g. after the Docker
daemon restarts the kind node containers): run ``make kind-gpus`` again then.

Exit status: 0 when every GPU-like node was patched (or, with --dry-run, planned);
1 with a message naming the problem and the fix otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
DEFAULT_CLUSTER_CONFIG = Path(__file__).resolve().parent / "cluster.yaml"
DEFAULT_CONTEXT = "kind-ml-platform"


def json_pointer_token(key: str) -> str:
    """Escape one JSON-pointer reference token (RFC 6901): ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")


def node_status_patch(gpus: int) -> list[dict[str, Any]]:
    """The RFC 6902 JSON patch for a Node's status subresource advertising ``gpus`` GPUs.

    ``add`` on an existing member replaces it, so the patch is idempotent.
    """
    if gpus < 1:
        raise ValueError(f"a GPU-like node needs at least 1 GPU, got {gpus}")
    token = json_pointer_token(GPU_RESOURCE)
    return [
        {"op": "add", "path": f"/status/capacity/{token}", "value": str(gpus)},
        {"op": "add", "path": f"/status/allocatable/{token}", "value": str(gpus)},
    ]


def kind_node_names(config: dict[str, Any]) -> list[str]:
    """Node names kind gives the config's nodes: <name>-control-plane[N], <name>-worker[N]."""
    cluster = config.get("name") or "kind"
    seen: dict[str, int] = {}
    names = []
    for node in config.get("nodes") or [{"role": "control-plane"}]:
        role = node.get("role", "control-plane")
        seen[role] = seen.get(role, 0) + 1
        suffix = "" if seen[role] == 1 else str(seen[role])
        names.append(f"{cluster}-{role}{suffix}")
    return names


def planned_patches(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Node name -> status patch for every node of a kind config labelled with a GPU count."""
    plan = {}
    for name, node in zip(kind_node_names(config), config.get("nodes") or [], strict=False):
        count = (node.get("labels") or {}).get(GPU_COUNT_LABEL)
        if count is not None:
            plan[name] = node_status_patch(int(count))
    return plan


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"fake_gpus: {message}\n")
    return 1


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def _patch_cluster(context: str, kubeconfig: str | None, count: int | None, dry_run: bool) -> int:
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError:
        return _fail(
            "the kubernetes Python client is not installed; run this script with the "
            "project venv (`make kind-gpus` or `.venv/bin/python k8s/kind/fake_gpus.py`)"
        )
    try:
        config.load_kube_config(config_file=kubeconfig, context=context)
    except (ConfigException, FileNotFoundError) as exc:
        return _fail(
            f"cannot use kubeconfig context {context!r} ({exc}); create the cluster with "
            "`make kind-up` or pass --context"
        )
    api = client.CoreV1Api()
    try:
        nodes = api.list_node(label_selector=GPU_COUNT_LABEL).items
    except Exception as exc:  # urllib3/ApiException: the message is what the user needs
        return _fail(f"cannot list nodes through context {context!r}: {exc}")
    if not nodes:
        return _fail(
            f"no node carries the label {GPU_COUNT_LABEL!r}; was the cluster created from "
            "k8s/kind/cluster.yaml (`make kind-up`)?"
        )
    for node in nodes:
        gpus = count if count is not None else int(node.metadata.labels[GPU_COUNT_LABEL])
        patch = node_status_patch(gpus)
        if dry_run:
            _out(json.dumps({"node": node.metadata.name, "patch": patch}))
            continue
        api.patch_node_status(
            node.metadata.name, patch, _content_type="application/json-patch+json"
        )
        labels = node.metadata.labels
        _out(
            f"{node.metadata.name}: {GPU_RESOURCE}={gpus} "
            f"(gpu-type={labels.get('gpu-type', '?')}, node-pool={labels.get('node-pool', '?')})"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fake_gpus.py",
        description=(
            "Advertise fake nvidia.com/gpu capacity on kind nodes labelled "
            f"{GPU_COUNT_LABEL} (a JSON patch of each Node's status subresource), so pods of "
            "the A100/H100 profiles schedule on a cluster without GPUs."
        ),
        epilog="Run from the repository root with the project venv; `make kind-up` does.",
    )
    parser.add_argument(
        "--context",
        default=DEFAULT_CONTEXT,
        help=f"kubeconfig context of the kind cluster (default: {DEFAULT_CONTEXT})",
    )
    parser.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        help=f"GPUs per node, overriding each node's {GPU_COUNT_LABEL} label",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the patches as JSON lines instead of applying them",
    )
    parser.add_argument(
        "--from-config",
        type=Path,
        metavar="KIND_CONFIG",
        default=None,
        help=(
            "with --dry-run: plan from a kind cluster config instead of a live cluster "
            f"(e.g. {DEFAULT_CLUSTER_CONFIG.name}); no cluster is contacted"
        ),
    )
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.from_config is not None:
        if not args.dry_run:
            parser.error("--from-config only plans: add --dry-run")
        if not args.from_config.is_file():
            return _fail(f"kind config {args.from_config} not found")
        plan = planned_patches(_load_yaml(args.from_config))
        if not plan:
            return _fail(f"no node in {args.from_config} is labelled {GPU_COUNT_LABEL}")
        for name, patch in plan.items():
            if args.count is not None:
                patch = node_status_patch(args.count)
            _out(json.dumps({"node": name, "patch": patch}))
        return 0
    return _patch_cluster(args.context, args.kubeconfig, args.count, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
