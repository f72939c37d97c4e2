"""The harness is a real control plane: versioned binaries, RBAC, Pod Security, a scheduler,
and simulated nodes that carry exactly what the chart's `gpuPools` define."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from cluster_support import wait_for
from devstack.cluster import control_plane as cp
from devstack.cluster.nodes import GPU_RESOURCE, gpu_taint
from devstack.paths import tools_bin
from devstack.platform_names import gpu_profiles, load_platform_config
from kubernetes import client
from kubernetes.client.exceptions import ApiException

KUBE_VERSION = "v1.37.2"


def test_every_component_is_healthy(cluster):
    assert cluster.healthy() == {name: True for name in cp.COMPONENTS}


def test_api_server_and_kubectl_report_the_pinned_release(cluster):
    info = client.VersionApi(cluster.api_client()).get_code()
    assert info.git_version == KUBE_VERSION
    out = subprocess.run(
        [str(tools_bin() / "kubectl"), "version", "-o", "json"],
        env={**os.environ, **cluster.env()},
        capture_output=True,
        text=True,
        check=True,
    )
    versions = json.loads(out.stdout)
    assert versions["clientVersion"]["gitVersion"] == KUBE_VERSION
    assert versions["serverVersion"]["gitVersion"] == KUBE_VERSION


def test_gpu_pool_nodes_carry_the_chart_definition(core):
    platform = load_platform_config()
    taint = gpu_taint(platform)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    for name, pool in gpu_profiles(platform).items():
        pool_nodes = [n for n in nodes.values() if n.metadata.name.startswith(f"{name}-")]
        assert pool_nodes, f"no simulated node for GPU pool {name}"
        for node in pool_nodes:
            for key, value in pool["nodeLabels"].items():
                assert node.metadata.labels[key] == str(value)
            assert int(node.status.allocatable[GPU_RESOURCE]) > 0
            has_gpu_taint = (taint["key"], taint["value"], taint["effect"]) in [
                (t.key, t.value, t.effect) for t in node.spec.taints or []
            ]
            if node.metadata.name.endswith("-untainted"):  # the reconciler's work (cordoned)
                assert not has_gpu_taint and node.spec.unschedulable
            else:
                assert has_gpu_taint


def test_cpu_nodes_have_no_gpus_and_no_taints(core):
    cpu_nodes = [n for n in core.list_node().items if n.metadata.name.startswith("cpu-")]
    assert cpu_nodes
    for node in cpu_nodes:
        assert GPU_RESOURCE not in (node.status.allocatable or {})
        assert not node.spec.taints


@pytest.fixture
def namespace(core):
    name = f"harness-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        {
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        }
    )
    yield name
    core.delete_namespace(name)


def _pod(name: str, **container: object) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.37", **container}],
        },
    }


def test_pod_security_admission_rejects_a_privileged_pod(core, namespace):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, _pod("root", securityContext={"privileged": True}))
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body


def test_rbac_denies_a_service_account_without_bindings(cluster):
    review = client.AuthorizationV1Api(cluster.api_client()).create_subject_access_review(
        {
            "spec": {
                "user": "system:serviceaccount:default:default",
                "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"},
            }
        }
    )
    assert review.status.allowed is False


def test_scheduler_binds_a_pod_and_kwok_runs_it_to_completion(core):
    name = f"probe-{uuid.uuid4().hex[:8]}"
    core.create_namespaced_pod("default", _pod(name))
    try:
        pod = wait_for(
            lambda: core.read_namespaced_pod(name, "default"),
            lambda p: p.status.phase == "Succeeded",
            what=f"pod {name} to succeed",
        )
        assert pod.spec.node_name.startswith("cpu-"), "an untolerating pod landed on a GPU node"
    finally:
        core.delete_namespaced_pod(name, "default", grace_period_seconds=0)


def test_cli_reports_the_running_harness(cluster):
    run = [sys.executable, "-m", "devstack", "cluster"]
    status = subprocess.run(
        [*run, "status", "--root", str(cluster.root)], capture_output=True, text=True
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert all(name in status.stdout for name in cp.COMPONENTS)
    env = subprocess.run(
        [*run, "env", "--root", str(cluster.root)], capture_output=True, text=True, check=True
    )
    assert env.stdout.strip() == f"export KUBECONFIG={cluster.kubeconfig}"
