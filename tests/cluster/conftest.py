"""The cluster tests' harness: a real control plane with kwok-simulated GPU pools.

`cluster` (session): etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on
free loopback ports under a temporary root (`devstack.cluster.harness.Cluster`), with the
simulated CPU / A100 / H100 nodes built from the chart's `gpuPools`. Started on first use and
always stopped at the end of the session, also after failures, Ctrl-C or SIGTERM. The binaries
come from `make cluster-tools`; without them the tests fail with that instruction (CI has Go).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest
from devstack.cluster.harness import Cluster


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    harness = Cluster(tmp_path_factory.mktemp("cluster"), apiserver_port=None)
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        harness.up()
        yield harness
    finally:
        try:
            harness.down()
        finally:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def core(cluster: Cluster):
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())
