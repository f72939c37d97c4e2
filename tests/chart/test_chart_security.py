"""Pod Security per namespace (every profile, upstream charts included), this chart's own
hardening on top (read-only root, resources, pinned images, probes, no API tokens), and
least-privilege RBAC."""

from __future__ import annotations

import pytest
from chart_render import by_kind_name, is_ours, pod_specs, render_chart
from helm_chart import PROFILES, profile_release
from pod_security import containers, violations

R = "ml-platform"
# The one pod of this chart that talks to the Kubernetes API and therefore gets a token.
TOKEN_ALLOWED_SUFFIX = "-taint-reconciler"
# What the release namespace can be labelled: every pod the chart puts there meets it.
RELEASE_NAMESPACE_LEVEL = "restricted"
# Extra renders beside the profiles: the other shapes of the pods.
VARIANTS = {
    "mlflow-sqlite": {"mlflow": {"backendStore": {"type": "sqlite"}}},
    "shared-volume": {"sharedVolume": {"enabled": True}},
}


def workloads(objects):
    for obj in objects:
        for spec in pod_specs(obj):
            yield f"{obj['kind']} {obj['metadata']['name']}", obj, spec


def namespace_levels(objects, release_namespace: str) -> dict[str, str]:
    """enforce level of each namespace the chart creates, + the release namespace's target."""
    levels = {
        o["metadata"]["name"]: o["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for o in objects
        if o["kind"] == "Namespace"
    }
    levels.setdefault(release_namespace, RELEASE_NAMESPACE_LEVEL)
    return levels


@pytest.fixture(scope="module")
def rendered(rendered_profiles):
    """{name: (objects, release namespace)} for every profile and variant."""
    out = {p: (objs, profile_release(p)[1]) for p, objs in rendered_profiles.items()}
    for name, values in VARIANTS.items():
        out[name] = (render_chart(values), R)
    return out


@pytest.fixture(scope="module")
def all_pods(rendered):
    pods = [pod for objects, _ in rendered.values() for pod in workloads(objects)]
    assert pods
    return pods


@pytest.fixture(scope="module")
def our_pods(all_pods):
    return [pod for pod in all_pods if is_ours(pod[1])]


# ------------------------------------------------------------------ Pod Security per namespace
@pytest.mark.parametrize("name", [*sorted(PROFILES), *sorted(VARIANTS)])
def test_every_pod_passes_its_namespaces_pod_security_level(rendered, name):
    objects, release_namespace = rendered[name]
    levels = namespace_levels(objects, release_namespace)
    problems = []
    for where, obj, spec in workloads(objects):
        namespace = obj["metadata"]["namespace"]
        level = levels.get(namespace)
        assert level, (
            f"{where} lands in {namespace}, a namespace the chart neither creates nor owns"
        )
        problems += [f"{where} ({namespace}, {level}): {v}" for v in violations(spec, level)]
    assert not problems, "\n".join(problems)


def test_training_and_serving_enforce_restricted_and_only_the_device_plugin_more(rendered):
    objects, _ = rendered["default"]
    labels = {
        o["metadata"]["name"]: o["metadata"]["labels"] for o in objects if o["kind"] == "Namespace"
    }
    for namespace, level in {
        "ml-training": "restricted",
        "ml-serving": "restricted",
        "nvidia-device-plugin": "privileged",
    }.items():
        for mode in ("enforce", "warn", "audit"):
            assert labels[namespace][f"pod-security.kubernetes.io/{mode}"] == level, namespace
    assert set(labels) == {"ml-training", "ml-serving", "nvidia-device-plugin"}


def test_privileged_pods_are_the_device_plugins_in_its_own_namespace(rendered):
    """The reason for the privileged namespace, checked: those pods really need it, and no
    other pod of any profile does."""
    needing_more = []
    for objects, _ in rendered.values():
        for where, obj, spec in workloads(objects):
            if violations(spec, "baseline"):
                needing_more.append((where, obj["metadata"]["namespace"]))
    assert needing_more and all(ns == "nvidia-device-plugin" for _, ns in needing_more)
    assert {w for w, _ in needing_more} == {
        f"DaemonSet {R}-nvidia-device-plugin",
        f"DaemonSet {R}-nvidia-device-plugin-mps-control-daemon",
    }


def test_minio_runs_restricted_with_recreate_updates(default_objects):
    deployment = by_kind_name(default_objects, "Deployment", f"{R}-minio")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one writer on an RWO volume
    spec = deployment["spec"]["template"]["spec"]
    assert violations(spec, "restricted") == []
    assert spec["serviceAccountName"] == f"{R}-minio"


# ------------------------------------------------------------------ this chart's own pods
def test_our_containers_are_hardened_beyond_restricted(our_pods):
    for where, _, spec in our_pods:
        psc = spec.get("securityContext") or {}
        assert isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, where
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            # every container of this chart can run read-only: writable paths are emptyDirs
            assert sc.get("readOnlyRootFilesystem") is True, f"{where} container {c['name']}"


def test_containers_have_requests_limits_and_pinned_images(all_pods):
    for where, obj, spec in all_pods:
        for c in containers(spec):
            name = f"{where} container {c['name']}"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), name
            if not is_ours(obj):
                continue  # the upstream charts' resources are theirs (MinIO's are set in values)
            resources = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            assert "memory" in resources.get("limits", {}), name


def test_long_running_containers_have_probes(our_pods):
    for where, obj, spec in our_pods:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in spec["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{where} container {c['name']}"


def test_only_the_reconciler_gets_an_api_token(our_pods):
    for where, obj, spec in our_pods:
        expected = obj["metadata"]["name"].endswith(TOKEN_ALLOWED_SUFFIX)
        assert spec.get("automountServiceAccountToken") is expected, where


def test_our_service_accounts_do_not_automount_tokens(default_objects):
    accounts = [o for o in default_objects if o["kind"] == "ServiceAccount" and is_ours(o)]
    assert len(accounts) >= 6
    for obj in accounts:
        assert obj.get("automountServiceAccountToken") is False, obj["metadata"]["name"]


def test_hooks_and_helm_tests_use_the_small_image(default_objects):
    for name in ("create-buckets", "test-buckets", "test-mlflow", "test-airflow"):
        obj = next(o for o in default_objects if o["metadata"]["name"] == f"{R}-{name}")
        (spec,) = pod_specs(obj)
        (container,) = spec["containers"]
        assert container["image"] == "ghcr.io/ml-platform/platform-tools:0.1.0", name


# ------------------------------------------------------------------ RBAC
def rules(obj):
    return [
        (
            tuple(r.get("apiGroups", [])),
            tuple(r["resources"]),
            tuple(r["verbs"]),
            tuple(r.get("resourceNames", [])),
        )
        for r in obj["rules"]
    ]


def test_taint_reconciler_may_only_read_and_patch_nodes(default_objects):
    role = by_kind_name(default_objects, "ClusterRole", f"{R}-taint-reconciler")
    assert rules(role) == [(("",), ("nodes",), ("get", "list", "watch", "patch"), ())]


@pytest.mark.parametrize("namespace", ["ml-training", "ml-serving"])
def test_pod_launcher_role_is_least_privilege(default_objects, namespace):
    """Pods only: nothing on Deployments - the model server follows the alias by itself."""
    role = by_kind_name(default_objects, "Role", f"{R}-pod-launcher", namespace)
    assert rules(role) == [
        (("",), ("pods",), ("create", "get", "list", "watch", "delete", "patch"), ()),
        (("",), ("pods/log",), ("get",), ()),
        (("",), ("pods/exec",), ("create", "get"), ()),
        (("",), ("events",), ("list", "watch"), ()),
    ]


def test_pod_launcher_is_bound_to_the_airflow_worker_and_triggerer_only(default_objects):
    for namespace in ("ml-training", "ml-serving"):
        binding = by_kind_name(default_objects, "RoleBinding", f"{R}-pod-launcher", namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{R}-pod-launcher",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ml-platform-airflow-worker", "namespace": R},
            {"kind": "ServiceAccount", "name": "ml-platform-airflow-triggerer", "namespace": R},
        ]


def test_no_role_outside_the_training_and_serving_namespaces(default_objects):
    for obj in default_objects:
        if obj["kind"] in ("Role", "RoleBinding"):
            assert obj["metadata"]["namespace"] in ("ml-training", "ml-serving")
        if obj["kind"] == "ClusterRole":
            assert obj["metadata"]["name"] in (
                f"{R}-taint-reconciler",
                f"{R}-nvidia-device-plugin-role",  # nodes get/list/watch (upstream chart)
            )
