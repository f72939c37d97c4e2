"""CLI: `python -m taint_reconciler --config platform.json` (see --help)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from taint_reconciler.config import ConfigError, load


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="taint-reconciler",
        description="Keep the GPU taint of the platform config on every node of an enabled GPU pool.",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=Path("/etc/ml-platform/platform.json"),
        help="platform config file (docs/CONTRACTS.md section 3); default %(default)s",
    )
    p.add_argument(
        "--resync-seconds",
        type=int,
        default=300,
        help="seconds between full re-lists of the nodes; default %(default)s",
    )
    p.add_argument("--dry-run", action="store_true", help="log what would change, patch nothing")
    p.add_argument(
        "--heartbeat-file",
        type=Path,
        default=None,
        help="file touched after every list and watch event (for the probes)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level; default %(default)s",
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        help="kubeconfig file when running outside the cluster; default: in-cluster config",
    )
    p.add_argument(
        "--check-heartbeat",
        type=Path,
        default=None,
        metavar="FILE",
        help="probe mode: exit 0 when FILE is younger than --max-age-seconds, else 1",
    )
    p.add_argument(
        "--max-age-seconds",
        type=float,
        default=900,
        help="probe mode: the oldest acceptable heartbeat; default %(default)s",
    )
    return p.parse_args(argv)


def check_heartbeat(path: Path, max_age: float, now: float | None = None) -> int:
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        sys.stderr.write(f"no heartbeat at {path}\n")
        return 1
    if age > max_age:
        sys.stderr.write(f"heartbeat {path} is {age:.0f}s old (limit {max_age:.0f}s)\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check_heartbeat is not None:
        return check_heartbeat(args.check_heartbeat, args.max_age_seconds)

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"taint-reconciler: {exc}\n")
        return 2

    from kubernetes import client, watch
    from kubernetes import config as kube_config

    if args.kubeconfig:
        kube_config.load_kube_config(config_file=args.kubeconfig)
    else:
        kube_config.load_incluster_config()

    from taint_reconciler.controller import Reconciler

    pools = ", ".join(f"{p.name} {dict(p.node_labels)}" for p in config.pools) or "none"
    logging.getLogger("taint_reconciler").info(
        "keeping %s on the nodes of GPU pools: %s%s",
        config.taint,
        pools,
        " (dry run)" if args.dry_run else "",
    )
    reconciler = Reconciler(
        client.CoreV1Api(), config, dry_run=args.dry_run, heartbeat_file=args.heartbeat_file
    )
    reconciler.run(
        lambda *a, **kw: watch.Watch().stream(*a, **kw), resync_seconds=args.resync_seconds
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
