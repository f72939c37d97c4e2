"""Every pod this chart owns meets the `restricted` Pod Security Standard (and more: read-only
root, resources, pinned images); RBAC is least privilege."""

from __future__ import annotations

import pytest
from chart_render import PROFILES, by_kind_name, pod_specs, render_chart

R = "ml-platform"
# Pods that talk to the Kubernetes API and therefore get a token.
TOKEN_ALLOWED = {f"{R}-taint-reconciler"}


def workloads(objects):
    for obj in objects:
        for spec in pod_specs(obj):
            yield f"{obj['kind']} {obj['metadata']['name']}", obj, spec


def containers(spec):
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.fixture(scope="module")
def all_pods(rendered_profiles):
    extra = render_chart({"mlflow": {"backendStore": {"type": "sqlite"}}})
    pods = []
    for objects in [*rendered_profiles.values(), extra]:
        pods.extend(workloads(objects))
    assert pods
    return pods


def test_every_profile_has_pods(rendered_profiles):
    for profile in PROFILES:
        assert list(workloads(rendered_profiles[profile])), profile


def test_pods_run_as_non_root_with_runtime_default_seccomp(all_pods):
    for where, _, spec in all_pods:
        psc = spec.get("securityContext") or {}
        assert psc.get("runAsNonRoot") is True, where
        assert isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, where
        assert (psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where


def test_containers_are_restricted(all_pods):
    for where, _, spec in all_pods:
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            name = f"{where} container {c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not sc.get("capabilities", {}).get("add"), name
            assert not sc.get("privileged"), name
            # every container of this chart can run read-only: writable paths are emptyDirs
            assert sc.get("readOnlyRootFilesystem") is True, name


def test_no_host_access(all_pods):
    for where, _, spec in all_pods:
        assert (
            not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        ), where
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, f"{where} volume {volume['name']}"
        for c in containers(spec):
            for port in c.get("ports", []):
                assert "hostPort" not in port, where


def test_containers_have_requests_limits_and_pinned_images(all_pods):
    for where, _, spec in all_pods:
        for c in containers(spec):
            name = f"{where} container {c['name']}"
            resources = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            assert "memory" in resources.get("limits", {}), name
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), name


def test_long_running_containers_have_probes(all_pods):
    for where, obj, spec in all_pods:
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in spec["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{where} container {c['name']}"


def test_only_the_reconciler_gets_an_api_token(all_pods):
    for where, obj, spec in all_pods:
        expected = obj["metadata"]["name"] in TOKEN_ALLOWED
        assert spec.get("automountServiceAccountToken") is expected, where


def test_service_accounts_do_not_automount_tokens(default_objects):
    for obj in default_objects:
        if obj["kind"] == "ServiceAccount":
            assert obj.get("automountServiceAccountToken") is False, obj["metadata"]["name"]


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
    role = by_kind_name(default_objects, "Role", f"{R}-pod-launcher", namespace)
    expected = [
        (("",), ("pods",), ("create", "get", "list", "watch", "delete", "patch"), ()),
        (("",), ("pods/log",), ("get",), ()),
        (("",), ("pods/exec",), ("create", "get"), ()),
        (("",), ("events",), ("list", "watch"), ()),
    ]
    if namespace == "ml-serving":
        expected.append((("apps",), ("deployments",), ("get", "patch"), (f"{R}-model-server",)))
    assert rules(role) == expected


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
            assert obj["metadata"]["name"] == f"{R}-taint-reconciler"


def test_created_namespaces_enforce_baseline_and_warn_restricted(default_objects):
    for name in ("ml-training", "ml-serving"):
        labels = by_kind_name(default_objects, "Namespace", name)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert labels["pod-security.kubernetes.io/audit"] == "restricted"
