"""The cluster tests' harness: a real control plane with kwok-simulated GPU pools.

`cluster` (session): etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
free loopback ports under a temporary root (`devstack.cluster.harness.Cluster`), with the
simulated CPU / A100 / H100 nodes built from the chart's `gpuPools`. Started on first use and
always stopped at the end of the session, also after failures, Ctrl-C or SIGTERM. The binaries
come from `make cluster-tools`; without them the tests fail with that instruction (CI has Go).

`platform` (session): charts/ml-platform installed into it with default values and `--wait`,
with the real MinIO and NVIDIA device-plugin packages (the official Airflow chart cannot be
obtained offline: the copy leaves it out, see tests/helm_chart.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devstack.cluster.harness import Cluster
from devstack.interrupts import sigterm_as_ctrl_c


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    harness = Cluster(tmp_path_factory.mktemp("cluster"), apiserver_port=None)
    with sigterm_as_ctrl_c():
        try:
            harness.up()
            yield harness
        finally:
            harness.down()


@pytest.fixture(scope="session")
def core(cluster: Cluster):
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


@pytest.fixture(scope="session")
def prepared_chart(tmp_path_factory: pytest.TempPathFactory):
    """charts/ml-platform with its real MinIO and device-plugin packages (tests/helm_chart.py)."""
    from helm_chart import prepare_chart

    return prepare_chart(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="session")
def platform(cluster: Cluster, core, prepared_chart):
    """The chart installed as docs/chart.md tells a platform team: the release namespace
    labelled `restricted` first, then `helm install --wait` with default values."""
    from cluster_support import helm_install
    from helm_chart import NAMESPACE, RELEASE

    core.create_namespace(
        {
            "metadata": {
                "name": NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        }
    )
    return helm_install(cluster.kubeconfig, prepared_chart.path, RELEASE, NAMESPACE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here needs the harness: mark it `cluster` (`-m "not cluster"` skips them)."""
    for item in items:
        if "/tests/cluster/" in str(item.path):
            item.add_marker(pytest.mark.cluster)
