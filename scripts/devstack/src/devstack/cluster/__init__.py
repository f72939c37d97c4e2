"""A real Kubernetes control plane on loopback with kwok-simulated GPU pools (tests/cluster).

Python API: `devstack.cluster.harness.Cluster`; CLI: `devstack cluster up|down|status|env`.
"""
