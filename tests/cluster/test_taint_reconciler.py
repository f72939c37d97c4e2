"""The taint reconciler (images/taint-reconciler), the real process, against the real API server.

It runs as the chart's ServiceAccount (a token from the TokenRequest API, so the chart's RBAC
is what it gets) with the release's platform config read from its ConfigMap. The harness has a
GPU-labelled node without the GPU taint (`<pool>-untainted`, cordoned so nothing lands on it).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import platform_config_of, service_account_kubeconfig, wait_for
from devstack.cluster import control_plane as cp
from devstack.cluster.nodes import gpu_taint
from devstack.platform_names import load_platform_config

TAINT = gpu_taint(load_platform_config())


def _has_gpu_taint(node) -> bool:
    return any(
        (t.key, t.value, t.effect) == (TAINT["key"], TAINT["value"], TAINT["effect"])
        for t in node.spec.taints or []
    )


def _untainted_node(core):
    (node,) = [n for n in core.list_node().items if n.metadata.name.endswith("-untainted")]
    return node.metadata.name


def _remove_gpu_taint(core, name: str) -> None:
    node = core.read_node(name)
    keep = [t for t in node.spec.taints or [] if t.key != TAINT["key"]]
    core.patch_node(name, {"spec": {"taints": [t.to_dict() for t in keep] or None}})


@pytest.fixture
def reconciler(cluster, platform, core, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    deployment = next(
        o
        for o in platform.live(cluster)
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("taint-reconciler")
    )
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = service_account_kubeconfig(
        cluster, platform.namespace, account, tmp_path / "kubeconfig"
    )
    config = tmp_path / "platform.json"
    config.write_text(json.dumps(platform_config_of(cluster, platform)))
    log = (tmp_path / "reconciler.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "taint_reconciler", "--config", str(config),
         "--kubeconfig", str(kubeconfig), "--resync-seconds", "30"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        _remove_gpu_taint(core, _untainted_node(core))  # the harness's starting state


def test_reconciler_taints_the_untainted_gpu_node_and_leaves_cpu_nodes_alone(reconciler, core):
    name = _untainted_node(core)
    wait_for(lambda: core.read_node(name), _has_gpu_taint, what=f"the GPU taint on {name}")
    for node in core.list_node().items:
        if node.metadata.name.startswith("cpu-"):
            assert not _has_gpu_taint(node), f"the reconciler tainted CPU node {node.metadata.name}"
    assert reconciler.poll() is None, "the reconciler exited"


def test_reconciler_recovers_after_the_api_server_restarts(reconciler, cluster, core):
    name = _untainted_node(core)
    wait_for(lambda: core.read_node(name), _has_gpu_taint, what=f"the GPU taint on {name}")
    cluster.restart(cp.APISERVER)
    _remove_gpu_taint(core, name)  # a node that lost its taint while the watch was broken
    wait_for(
        lambda: core.read_node(name),
        _has_gpu_taint,
        what=f"the reconciler to taint {name} again after the API server restart",
        timeout=120,
    )
    assert reconciler.poll() is None, "the reconciler exited"
