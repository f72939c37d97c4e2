"""k8s/kind/cluster.yaml against kind v0.33's v1alpha4 config format, and the pieces that
must line up with it: the node mount of dags/, the Makefile, skaffold's kube-context."""

from __future__ import annotations

import re

import yaml
from devloop_support import REPO, load_yaml_all
from devstack.platform_names import gpu_profiles, load_platform_config

# Field names of sigs.k8s.io/kind@v0.33.0 pkg/apis/config/v1alpha4/types.go (yaml tags).
CLUSTER_KEYS = {
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
NODE_KEYS = {
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
MOUNT_KEYS = {"containerPath", "hostPath", "readOnly", "selinuxRelabel", "propagation"}
TAINT_FLAG = re.compile(
    r"^(?P<key>[^=:,]+)=(?P<value>[^:,]*):(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)$"
)


def gpu_like(node: dict) -> bool:
    return "gpu-type" in (node.get("labels") or {})


def join_patches(node: dict) -> list[dict]:
    return [yaml.safe_load(p) for p in node.get("kubeadmConfigPatches", [])]


def registered_taints(node: dict) -> list[dict[str, str]]:
    """Taints the node's kubelet registers with (kubeletExtraArgs register-with-taints)."""
    taints = []
    for patch in join_patches(node):
        args = (patch.get("nodeRegistration") or {}).get("kubeletExtraArgs") or {}
        for spec in filter(None, str(args.get("register-with-taints", "")).split(",")):
            m = TAINT_FLAG.match(spec)
            assert m, f"malformed taint {spec!r} (want key=value:Effect)"
            taints.append(m.groupdict())
    return taints


def test_config_uses_only_fields_kind_knows(kind_config):
    assert kind_config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert kind_config["kind"] == "Cluster"
    assert set(kind_config) <= CLUSTER_KEYS, set(kind_config) - CLUSTER_KEYS
    for node in kind_config["nodes"]:
        assert set(node) <= NODE_KEYS, set(node) - NODE_KEYS
        assert node["role"] in {"control-plane", "worker"}
        for mount in node.get("extraMounts", []):
            assert set(mount) <= MOUNT_KEYS, set(mount) - MOUNT_KEYS


def test_one_control_plane_one_cpu_worker_one_gpu_like_worker_per_pool(kind_config):
    roles = [n["role"] for n in kind_config["nodes"]]
    assert roles.count("control-plane") == 1
    workers = [n for n in kind_config["nodes"] if n["role"] == "worker"]
    assert len([n for n in workers if not gpu_like(n)]) == 1
    gpu_types = sorted(n["labels"]["gpu-type"] for n in workers if gpu_like(n))
    assert gpu_types == sorted(gpu_profiles(load_platform_config(REPO)))


def test_cpu_worker_is_untainted_and_unlabelled(kind_config):
    cpu = next(n for n in kind_config["nodes"] if n["role"] == "worker" and not gpu_like(n))
    assert registered_taints(cpu) == []
    assert not cpu.get("labels"), "cpuProfile.nodeLabels is {}: the CPU worker needs no labels"


def test_gpu_like_workers_register_with_a_taint_through_join_configuration(kind_config):
    for node in filter(gpu_like, kind_config["nodes"]):
        patches = join_patches(node)
        assert [p["kind"] for p in patches] == ["JoinConfiguration"], (
            "workers join: the kubelet flags belong in an (unversioned) JoinConfiguration patch"
        )
        assert "apiVersion" not in patches[0], (
            "keep the patch unversioned: kind v0.33 translates it to kubeadm v1beta4's list form"
        )
        assert len(registered_taints(node)) == 1


def test_gpu_count_label_is_a_positive_integer(kind_config):
    for node in filter(gpu_like, kind_config["nodes"]):
        count = node["labels"]["nvidia.com/gpu.count"]
        assert isinstance(count, str) and count.isdigit() and int(count) >= 1, (
            "label values are strings: quote the count"
        )


def test_every_node_runs_the_same_pinned_node_image(kind_config):
    images = {n.get("image") for n in kind_config["nodes"]}
    assert len(images) == 1
    (image,) = images
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", image or ""), image


def test_dags_mount_feeds_the_dags_volume(kind_config):
    docs = load_yaml_all(REPO / "k8s" / "kind" / "dags-volume.yaml")
    pv = next(d for d in docs if d["kind"] == "PersistentVolume")
    node_path = pv["spec"]["hostPath"]["path"]
    workers = [n for n in kind_config["nodes"] if n["role"] == "worker"]
    for node in workers:
        mounts = {m["containerPath"]: m for m in node.get("extraMounts", [])}
        assert node_path in mounts, f"worker without the dags mount at {node_path}"
        mount = mounts[node_path]
        # kind resolves a relative hostPath against the current directory (filepath.Abs).
        assert mount["hostPath"] == "./dags" and mount.get("readOnly") is True
    assert (REPO / "dags").is_dir()


def test_makefile_creates_the_cluster_from_the_repository_root(kind_config):
    makefile = (REPO / "Makefile").read_text()
    assert f"KIND_CLUSTER := {kind_config['name']}" in makefile
    assert "cd $(CURDIR) && kind create cluster --config k8s/kind/cluster.yaml" in makefile
    assert "KIND_VERSION := v0.33.0" in makefile
    assert "go install sigs.k8s.io/kind@$(KIND_VERSION)" in makefile


def test_skaffold_kind_profile_activates_on_this_cluster(kind_config, skaffold_config):
    kind_profile = next(p for p in skaffold_config["profiles"] if p["name"] == "kind")
    assert {"kubeContext": f"kind-{kind_config['name']}"} in kind_profile["activation"]
