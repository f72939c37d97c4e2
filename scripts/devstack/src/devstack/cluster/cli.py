"""`devstack cluster up|down|status|env`: the Kubernetes harness from the command line."""

from __future__ import annotations

import argparse
import shlex

from devstack.cluster.harness import DEFAULT_APISERVER_PORT, Cluster, default_cluster_root
from devstack.command_line import EXIT_ERROR, EXIT_NOT_RUNNING, RootCommands, out


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
    verbs = RootCommands(
        cluster.add_subparsers(dest="cluster_command", required=True, metavar="VERB"),
        "harness",
        "DEVSTACK_CLUSTER_ROOT",
        default_cluster_root(),
        "<repo>/.local/cluster",
    )
    up = verbs.add(
        "up",
        "start the harness (reuses a healthy one)",
        "Start the control plane and register the simulated nodes; returns when "
        "every node is Ready. Ctrl-C stops whatever was started.",
    )
    up.add_argument(
        "--apiserver-port",
        type=int,
        default=DEFAULT_APISERVER_PORT,
        help=f"preferred API server port (default {DEFAULT_APISERVER_PORT}; a taken one is replaced)",
    )
    verbs.add("down", "stop the harness", "Stop every process.")
    verbs.add(
        "status",
        "show each component's health",
        f"Exit 0 when all are healthy, {EXIT_NOT_RUNNING} when nothing runs, "
        f"{EXIT_ERROR} when something is unhealthy.",
    )
    verbs.add(
        "env",
        "print `export KUBECONFIG=…` for a shell",
        'Use: eval "$(devstack cluster env)"; then kubectl and helm talk to the harness.',
    )


def run_cluster_command(args: argparse.Namespace) -> int:
    verb = args.cluster_command
    if verb == "up":
        cluster = Cluster(args.root, apiserver_port=args.apiserver_port).up()
        out(f"API server   {cluster.server_url}")
        out(f"kubeconfig   {cluster.kubeconfig}")
        out(f"logs         {cluster.root}/logs/")
        out(f'next:        eval "$(devstack cluster env --root {shlex.quote(str(cluster.root))})"')
        return 0
    cluster = Cluster(args.root)
    if verb == "down":
        cluster.down()
        return 0
    if verb == "env":
        for name, value in sorted(cluster.env().items()):
            out(f"export {name}={shlex.quote(value)}")
        return 0
    health = cluster.healthy()
    if not health:
        out(f"no cluster harness running under {args.root}")
        return EXIT_NOT_RUNNING
    for name, ok in health.items():
        out(f"{name:<24} {'healthy' if ok else 'UNHEALTHY'}")
    return 0 if all(health.values()) else EXIT_ERROR
