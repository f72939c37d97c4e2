#!/usr/bin/env python3
"""Create ml-platform's GKE cluster and its A100/H100 node pools from k8s/gke/node-pools.yaml.

Prints the gcloud commands by default (review them, or paste them into your own tooling);
``--apply`` runs them one after the other and stops at the first failure. The YAML is the
single definition of the GKE pools: tests/consistency checks its labels, taint and GPU counts
against the chart's ``gpuPools``/``gpuTaint`` and builds the commands below in a test.

Exit status: 0 on success; 1 with a message naming the problem and the fix otherwise.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).resolve().parent / "node-pools.yaml"


def _kv(mapping: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in mapping.items())


def taint_arg(taint: dict[str, str]) -> str:
    """``key=value:Effect`` as ``--node-taints`` (and kubectl) spell a taint."""
    return f"{taint['key']}={taint['value']}:{taint['effect']}"


def cluster_command(spec: dict[str, Any], project: str | None) -> list[str]:
    """``gcloud container clusters create`` for the cluster and its CPU (default) pool."""
    c = spec["cluster"]
    cmd = [
        "gcloud",
        "container",
        "clusters",
        "create",
        c["name"],
        f"--location={c['location']}",
        f"--release-channel={c['releaseChannel']}",
        f"--machine-type={c['machineType']}",
        f"--num-nodes={c['numNodes']}",
        "--enable-autoscaling",
        f"--min-nodes={c['minNodes']}",
        f"--max-nodes={c['maxNodes']}",
    ]
    if project:
        cmd += [f"--project={project}", f"--workload-pool={project}.svc.id.goog"]
    return cmd


def node_pool_command(spec: dict[str, Any], pool: dict[str, Any], project: str | None) -> list[str]:
    """``gcloud container node-pools create`` for one GPU pool of the YAML."""
    c = spec["cluster"]
    acc = pool["accelerator"]
    accelerator = _kv(
        {
            "type": acc["type"],
            "count": acc["count"],
            "gpu-driver-version": acc.get("gpuDriverVersion", "latest"),
        }
    )
    cmd = [
        "gcloud",
        "container",
        "node-pools",
        "create",
        pool["name"],
        f"--cluster={c['name']}",
        f"--location={c['location']}",
        f"--machine-type={pool['machineType']}",
        f"--accelerator={accelerator}",
        f"--disk-size={pool['diskSizeGb']}",
        f"--node-labels={_kv(pool['labels'])}",
        f"--node-taints={','.join(taint_arg(t) for t in pool['taints'])}",
        "--enable-autoscaling",
        f"--num-nodes={pool['minNodes']}",
        f"--min-nodes={pool['minNodes']}",
        f"--max-nodes={pool['maxNodes']}",
    ]
    if project:
        cmd.append(f"--project={project}")
    return cmd


def commands(spec: dict[str, Any], project: str | None, with_cluster: bool) -> list[list[str]]:
    cmds = [cluster_command(spec, project)] if with_cluster else []
    return cmds + [node_pool_command(spec, p, project) for p in spec["nodePools"]]


def load_spec(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="node_pools.py",
        description=(
            "Print (or, with --apply, run) the gcloud commands that create ml-platform's GKE "
            "cluster and its tainted A100/H100 node pools from a node-pools YAML."
        ),
    )
    parser.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_FILE,
        help="node-pools definition (default: k8s/gke/node-pools.yaml)",
    )
    parser.add_argument("--project", default=None, help="Google Cloud project id")
    parser.add_argument(
        "--pools-only",
        action="store_true",
        help="only the node pools, for an existing cluster of the YAML's name",
    )
    parser.add_argument(
        "--apply", action="store_true", help="run the commands instead of printing them"
    )
    args = parser.parse_args(argv)
    if not args.file.is_file():
        sys.stderr.write(f"node_pools: {args.file} not found; pass --file\n")
        return 1
    cmds = commands(load_spec(args.file), args.project, with_cluster=not args.pools_only)
    if not args.apply:
        sys.stdout.write("".join(shlex.join(cmd) + "\n" for cmd in cmds))
        return 0
    if shutil.which("gcloud") is None:
        sys.stderr.write(
            "node_pools: the gcloud CLI is not on PATH; install the Google Cloud SDK "
            "(https://cloud.google.com/sdk/docs/install) or run without --apply to print the "
            "commands\n"
        )
        return 1
    for cmd in cmds:
        sys.stdout.write(f"+ {shlex.join(cmd)}\n")
        sys.stdout.flush()
        if subprocess.run(cmd, check=False).returncode != 0:
            sys.stderr.write(f"node_pools: {cmd[2]} {cmd[4]!r} failed; see gcloud's message\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
