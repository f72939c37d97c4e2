"""`devstack cluster up|down|status|env`: the Kubernetes harness from the command line."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from devstack.cluster.harness import DEFAULT_APISERVER_PORT, Cluster, default_cluster_root

EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("DEVSTACK_CLUSTER_ROOT") or default_cluster_root()),
        help="state folder of the harness (default: $DEVSTACK_CLUSTER_ROOT, else <repo>/.local/cluster)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")


def add_cluster_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cluster = commands.add_parser(
        "cluster",
        help="a real Kubernetes control plane with simulated GPU pools (the cluster tests' harness)",
        description=(
            "etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1, "
            "with simulated CPU and GPU nodes built from the profiles of "
            "dags/ml_pipeline/platform_defaults.json (the chart's gpuPools, rendered). "
            "Binaries: `make cluster-tools`."
        ),
        epilog='typical use: devstack cluster up && eval "$(devstack cluster env)" && kubectl get nodes',
    )
    verbs = cluster.add_subparsers(dest="cluster_command", required=True, metavar="VERB")
    up = verbs.add_parser(
        "up",
        help="start the harness (reuses a healthy one)",
        description="Start the control plane and register the simulated nodes; returns when "
        "every node is Ready. Ctrl-C stops whatever was started.",
    )
    _add_root(up)
    up.add_argument(
        "--apiserver-port",
        type=int,
        default=DEFAULT_APISERVER_PORT,
        help=f"preferred API server port (default {DEFAULT_APISERVER_PORT}; a taken one is replaced)",
    )
    down = verbs.add_parser("down", help="stop the harness", description="Stop every process.")
    _add_root(down)
    status = verbs.add_parser(
        "status",
        help="show each component's health",
        description=f"Exit 0 when all are healthy, {EXIT_NOT_RUNNING} when nothing runs, "
        f"{EXIT_ERROR} when something is unhealthy.",
    )
    _add_root(status)
    env = verbs.add_parser(
        "env",
        help="print `export KUBECONFIG=…` for a shell",
        description='Use: eval "$(devstack cluster env)"; then kubectl and helm talk to the harness.',
    )
    _add_root(env)


def run_cluster_command(args: argparse.Namespace) -> int:
    verb = args.cluster_command
    if verb == "up":
        cluster = Cluster(args.root, apiserver_port=args.apiserver_port).up()
        _out(f"API server   {cluster.server_url}")
        _out(f"kubeconfig   {cluster.kubeconfig}")
        _out(f"logs         {cluster.root}/logs/")
        _out(f'next:        eval "$(devstack cluster env --root {shlex.quote(str(cluster.root))})"')
        return 0
    cluster = Cluster(args.root)
    if verb == "down":
        cluster.down()
        return 0
    if verb == "env":
        for name, value in sorted(cluster.env().items()):
            _out(f"export {name}={shlex.quote(value)}")
        return 0
    health = cluster.healthy()
    if not health:
        _out(f"no cluster harness running under {args.root}")
        return EXIT_NOT_RUNNING
    for name, ok in health.items():
        _out(f"{name:<24} {'healthy' if ok else 'UNHEALTHY'}")
    return 0 if all(health.values()) else EXIT_ERROR
