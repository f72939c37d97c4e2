"""`helm install` of charts/ml-platform into the real API server, as a platform team runs it.

Everything is checked on the objects the API server holds, not on rendered YAML: admission
(schema validation, DNS-1123 names, Pod Security) and the controllers (Deployments, Jobs,
DaemonSets on the simulated GPU nodes, namespace deletion) have had their say. kwok reports
containers running and ready without running them: ready means "admitted and scheduled".
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from cluster_support import (
    CommandFailed,
    Release,
    helm_install,
    helm_uninstall,
    live_objects,
    wait_for,
)
from devstack.cluster.harness import Cluster
from helm_chart import PROFILES, profile_release
from kubernetes import client
from kubernetes.client.exceptions import ApiException

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
KEEP_ANNOTATION = "helm.sh/resource-policy"
ENFORCE = "pod-security.kubernetes.io/enforce"
SECOND_RELEASE = ("platform", "mlp", "second-release-values.yaml")


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace") or "", meta["name"])


def not_ready(objects: list[dict[str, Any]]) -> dict[str, str]:
    """{workload: what is missing} for every workload that is not ready (empty: all are).
    A DaemonSet that targets no node (the MPS daemon without MPS-capable GPUs) is ready."""
    problems = {}
    for obj in objects:
        kind, status, spec = obj["kind"], obj.get("status") or {}, obj.get("spec") or {}
        name = f"{kind} {obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
        if kind == "Deployment" and status.get("availableReplicas", 0) != spec.get("replicas", 1):
            problems[name] = f"available {status.get('availableReplicas', 0)}/{spec['replicas']}"
        elif kind == "StatefulSet" and status.get("readyReplicas", 0) != spec.get("replicas", 1):
            problems[name] = f"ready {status.get('readyReplicas', 0)}/{spec['replicas']}"
        elif kind == "DaemonSet" and status.get("numberReady", 0) != status.get(
            "desiredNumberScheduled", 0
        ):
            problems[name] = f"ready {status.get('numberReady')}/{status['desiredNumberScheduled']}"
    return problems


def _kept(manifest: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        _key(o)
        for o in manifest
        if (o["metadata"].get("annotations") or {}).get(KEEP_ANNOTATION) == "keep"
    }


# ------------------------------------------------------------------ the default install
def test_every_object_of_the_release_is_in_the_api_server(cluster, platform):
    manifest = platform.manifest(cluster.kubeconfig)
    live = platform.live(cluster)  # fails on any object that is missing

    def names(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return sorted((o["kind"], o["metadata"]["name"]) for o in objects)

    assert names(live) == names(manifest)


def test_every_workload_is_ready_after_install_wait(cluster, platform):
    live = platform.live(cluster)
    assert [o for o in live if o["kind"] in WORKLOAD_KINDS], "the release has no workloads"
    assert not_ready(live) == {}


def test_the_hooks_created_the_buckets_user_and_buckets(cluster, platform):
    """`--wait` returned after the post-install Jobs succeeded (helm waits for hooks)."""
    jobs = client.BatchV1Api(cluster.api_client()).list_namespaced_job(platform.namespace).items
    succeeded = {j.metadata.name for j in jobs if (j.status.succeeded or 0) >= 1}
    failed = {j.metadata.name for j in jobs if j.status.failed}
    assert failed == set()
    assert any(name.endswith("create-buckets") for name in succeeded) or not jobs, succeeded


def test_device_plugin_runs_on_every_gpu_node_and_nowhere_else(cluster, platform, core):
    values = platform.values["nvidiaDevicePlugin"]
    name = f"{platform.name}-{values['nameOverride']}"
    daemonset = client.AppsV1Api(cluster.api_client()).read_namespaced_daemon_set(
        name, values["namespaceOverride"]
    )
    selector = ",".join(f"{k}={v}" for k, v in daemonset.spec.selector.match_labels.items())
    pods = core.list_namespaced_pod(values["namespaceOverride"], label_selector=selector).items
    gpu_nodes = {n.metadata.name for n in core.list_node(label_selector="gpu-type").items}
    assert {p.spec.node_name for p in pods} == gpu_nodes


def test_install_prints_no_pod_security_warning(platform):
    assert "PodSecurity" not in platform.install_stderr, platform.install_stderr


def _restricted_violator() -> dict[str, Any]:
    """Fine for `baseline`, refused by `restricted` (may run as root, no seccomp profile)."""
    return {
        "metadata": {"name": f"violator-{uuid.uuid4().hex[:6]}"},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]},
    }


def test_every_namespace_enforces_restricted_but_the_device_plugins(cluster, platform, core):
    """Only the device plugin, whose values say why (host paths, host PID), is privileged; the
    release namespace is restricted because the platform fixture labels it as docs/chart.md says."""
    plugin_namespace = platform.values["nvidiaDevicePlugin"]["namespaceOverride"]
    namespaces = {o["metadata"].get("namespace") for o in platform.live(cluster)} - {None}
    assert plugin_namespace in namespaces
    for name in sorted(namespaces):
        level = (core.read_namespace(name).metadata.labels or {}).get(ENFORCE)
        if name == plugin_namespace:
            assert level == "privileged"
            continue
        assert level == "restricted", f"namespace {name} enforces {level!r}"
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(name, _restricted_violator())
        message = json.loads(refused.value.body)["message"]
        assert refused.value.status == 403 and 'violates PodSecurity "restricted' in message


def _secret(core, namespace: str, name: str) -> dict[str, str]:
    data = core.read_namespaced_secret(name, namespace).data or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_pipeline_credentials_are_a_bucket_limited_user_not_minio_root(platform, core):
    values = platform.values
    object_store = f"{platform.name}-object-store"
    copies = [
        _secret(core, ns, object_store)
        for ns in (
            platform.namespace,
            values["namespaces"]["training"],
            values["namespaces"]["serving"],
        )
    ]
    assert copies[0] == copies[1] == copies[2], "the object-store Secret differs between namespaces"
    root = _secret(core, platform.namespace, values["minio"]["existingSecret"])
    assert copies[0]["AWS_ACCESS_KEY_ID"] != root["rootUser"]
    assert copies[0]["AWS_SECRET_ACCESS_KEY"] != root["rootPassword"]


def _secrets_of(cluster, release: Release) -> dict[tuple[str, str], tuple[str, Any]]:
    core = client.CoreV1Api(cluster.api_client())
    found = {}
    for obj in release.manifest(cluster.kubeconfig):
        if obj["kind"] == "Secret":
            ns = obj["metadata"].get("namespace") or release.namespace
            live = core.read_namespaced_secret(obj["metadata"]["name"], ns)
            found[(ns, obj["metadata"]["name"])] = (live.metadata.resource_version, live.data)
    return found


def _generations(cluster, release: Release) -> dict[tuple[str, str, str], int]:
    return {
        _key(o): o["metadata"]["generation"]
        for o in release.live(cluster)
        if o["kind"] in WORKLOAD_KINDS
    }


def test_upgrade_with_unchanged_values_keeps_every_secret_and_rolls_nothing(
    cluster, platform, prepared_chart
):
    secrets, generations = _secrets_of(cluster, platform), _generations(cluster, platform)
    assert secrets, "the default install has no Secret"
    helm_install(
        cluster.kubeconfig, prepared_chart.path, platform.name, platform.namespace, verb="upgrade"
    )
    assert _secrets_of(cluster, platform) == secrets  # same data, not even rewritten
    assert _generations(cluster, platform) == generations


def test_a_bigger_postgresql_volume_upgrades_without_touching_the_statefulset(
    cluster, platform, prepared_chart
):
    generations = _generations(cluster, platform)
    release = helm_install(
        cluster.kubeconfig,
        prepared_chart.path,
        platform.name,
        platform.namespace,
        verb="upgrade",
        values={"postgresql": {"persistence": {"size": "20Gi"}}},
    )
    claim = next(
        o
        for o in release.live(cluster)
        if o["kind"] == "PersistentVolumeClaim" and "postgresql" in o["metadata"]["name"]
    )
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert _generations(cluster, release) == generations
    helm_install(  # back to the default values for the tests that follow
        cluster.kubeconfig, prepared_chart.path, platform.name, platform.namespace, verb="upgrade"
    )


# ------------------------------------------------------------------ a second release
def test_a_second_release_with_default_values_is_refused_by_name(cluster, prepared_chart, platform):
    with pytest.raises(CommandFailed) as refused:
        helm_install(cluster.kubeconfig, prepared_chart.path, "other", "other-ns")
    assert f"belongs to release {platform.name} in namespace {platform.namespace}" in str(
        refused.value
    )


def test_a_second_release_installs_beside_the_first_and_uninstalls_to_what_is_kept(
    cluster, prepared_chart, platform, core
):
    name, namespace, values_file = SECOND_RELEASE
    release = helm_install(
        cluster.kubeconfig,
        prepared_chart.path,
        name,
        namespace,
        values_files=(prepared_chart.path / "ci" / values_file,),
    )
    manifest = release.manifest(cluster.kubeconfig)
    assert not_ready(release.live(cluster)) == {}
    helm_uninstall(cluster.kubeconfig, name, namespace)
    remaining = live_objects(cluster.api_client(), manifest, namespace, ignore_not_found=True)
    kept = _kept(manifest)
    assert kept, "the values keep nothing on uninstall (the training data should stay)"
    assert {(k, n) for k, _, n in map(_key, remaining)} == {(k, n) for k, _, n in kept}
    assert not_ready(platform.live(cluster)) == {}, "the first release was disturbed"
    _delete_kept(core, manifest, namespace)


def _delete_kept(core, manifest: list[dict[str, Any]], namespace: str) -> None:
    """What a team does after `helm uninstall` to remove a release for good."""
    for kind, ns, name in _kept(manifest):
        if kind == "Namespace":
            core.delete_namespace(name)
        elif kind == "PersistentVolumeClaim":
            core.delete_namespaced_persistent_volume_claim(name, ns or namespace)
    for kind, _, name in _kept(manifest):
        if kind == "Namespace":
            _wait_namespace_gone(core, name)


def _wait_namespace_gone(core, name: str) -> None:
    wait_for(
        lambda: [n for n in core.list_namespace().items if n.metadata.name == name],
        lambda found: not found,
        what=f"namespace {name} to be deleted",
    )


# ------------------------------------------------------------------ every values profile
@pytest.fixture(scope="module")
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A second, empty harness: each profile installs as the first release of a cluster."""
    with Cluster(tmp_path_factory.mktemp("profiles-cluster"), apiserver_port=None) as harness:
        yield harness


@pytest.mark.parametrize("profile", sorted(set(PROFILES) - {"default"}))
def test_every_values_profile_installs_waits_and_uninstalls(fresh_cluster, prepared_chart, profile):
    """Each charts/ml-platform/ci profile as a platform team installs it. The Secrets a profile
    says you create (External Secrets …) are not created: kwok starts no container to read them."""
    name, namespace = profile_release(profile)
    core = client.CoreV1Api(fresh_cluster.api_client())
    core.create_namespace({"metadata": {"name": namespace, "labels": {ENFORCE: "restricted"}}})
    values_files = tuple(prepared_chart.path / "ci" / f for f in PROFILES[profile])
    release = helm_install(
        fresh_cluster.kubeconfig, prepared_chart.path, name, namespace, values_files=values_files
    )
    manifest = release.manifest(fresh_cluster.kubeconfig)
    try:
        assert not_ready(release.live(fresh_cluster)) == {}
        assert "PodSecurity" not in release.install_stderr, release.install_stderr
    finally:
        helm_uninstall(fresh_cluster.kubeconfig, name, namespace)
        _delete_kept(core, manifest, namespace)
        core.delete_namespace(namespace)
        _wait_namespace_gone(core, namespace)
