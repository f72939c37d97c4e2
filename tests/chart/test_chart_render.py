"""The chart lints, and each values profile renders exactly the objects it should, each valid
against the Kubernetes API schema (kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

import subprocess
import sys

import kubernetes_validate
import pytest
from chart_render import CHART, PROFILES, chart_copy, helm, render_chart

R = "ml-platform"  # release and release namespace
T, S = "ml-training", "ml-serving"

# ------------------------------------------------------------------ object sets, by feature
ALWAYS = {
    ("ConfigMap", f"{R}-platform", R),
    ("ConfigMap", f"{R}-airflow-env", R),
    ("ConfigMap", f"{R}-mlflow-env", R),
    ("Namespace", T, None),
    ("Namespace", S, None),
    ("PersistentVolumeClaim", "ml-shared-pvc", T),
    ("PriorityClass", "ml-training-gpu", None),
    # KubernetesPodOperator RBAC, in the training and serving namespaces only
    ("Role", f"{R}-pod-launcher", T),
    ("Role", f"{R}-pod-launcher", S),
    ("RoleBinding", f"{R}-pod-launcher", T),
    ("RoleBinding", f"{R}-pod-launcher", S),
    # MLflow (local subchart)
    ("Deployment", f"{R}-mlflow", R),
    ("Service", f"{R}-mlflow", R),
    ("ServiceAccount", f"{R}-mlflow", R),
    ("NetworkPolicy", f"{R}-mlflow", R),
    # model server
    ("Deployment", f"{R}-model-server", S),
    ("Service", f"{R}-model-server", S),
    ("ServiceAccount", f"{R}-model-server", S),
    ("NetworkPolicy", f"{R}-model-server", S),
    ("NetworkPolicy", f"{R}-training-deny-ingress", T),
    # helm test hooks
    ("Pod", f"{R}-test-mlflow", R),
    ("Pod", f"{R}-test-buckets", R),
    ("Pod", f"{R}-test-airflow", R),
}
GPU = {
    ("ServiceAccount", f"{R}-taint-reconciler", R),
    ("ClusterRole", f"{R}-taint-reconciler", None),
    ("ClusterRoleBinding", f"{R}-taint-reconciler", None),
    ("Deployment", f"{R}-taint-reconciler", R),
    ("NetworkPolicy", f"{R}-taint-reconciler", R),
    ("ResourceQuota", f"{R}-gpu", T),
}
BUNDLED_OBJECT_STORE = {  # MinIO + generated credentials + bucket hook
    ("Secret", f"{R}-object-store", R),
    ("Secret", f"{R}-object-store", T),
    ("Secret", f"{R}-object-store", S),
    ("Secret", f"{R}-minio-root", R),
    ("NetworkPolicy", f"{R}-minio", R),
    ("Job", f"{R}-create-buckets", R),
}
BUNDLED_DATABASE = {
    ("StatefulSet", f"{R}-postgresql", R),
    ("Service", f"{R}-postgresql", R),
    ("Secret", f"{R}-postgresql", R),
    ("ConfigMap", f"{R}-postgresql-initdb", R),
    ("NetworkPolicy", f"{R}-postgresql", R),
    ("Secret", f"{R}-airflow-metadata", R),
    ("Secret", f"{R}-mlflow-backend-store", R),
}

EXPECTED = {
    "default": ALWAYS | GPU | BUNDLED_OBJECT_STORE | BUNDLED_DATABASE,
    # external S3 and DB with user-provided Secrets and pre-provisioned buckets: none of the bundled objects
    "external-s3-db": ALWAYS | GPU,
    # the device plugin and the pool choice change values and upstream objects, not ours
    "h100-only": ALWAYS | GPU | BUNDLED_OBJECT_STORE | BUNDLED_DATABASE,
    "no-device-plugin": ALWAYS | GPU | BUNDLED_OBJECT_STORE | BUNDLED_DATABASE,
    "git-dag-bundle": ALWAYS | GPU | BUNDLED_OBJECT_STORE | BUNDLED_DATABASE,
}


def kind_names(objects):
    return {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects}


def test_every_profile_is_covered():
    assert set(EXPECTED) == set(PROFILES)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_renders_exactly_the_expected_objects(rendered_profiles, profile):
    got = kind_names(rendered_profiles[profile])
    expected = EXPECTED[profile]
    assert got == expected, (
        f"unexpected: {sorted(got - expected)}; missing: {sorted(expected - got)}"
    )


def test_no_gpu_pool_drops_the_reconciler_and_the_quota():
    objects = render_chart({"gpuPools": {"a100": {"enabled": False}, "h100": {"enabled": False}}})
    assert kind_names(objects) == ALWAYS | BUNDLED_OBJECT_STORE | BUNDLED_DATABASE


def test_optional_parts_can_all_be_switched_off():
    objects = render_chart(
        {
            "airflow": {"enabled": False},
            "mlflow": {"enabled": False},
            "modelServer": {"enabled": False},
            "tests": {"enabled": False},
            "networkPolicies": {"enabled": False},
            "createNamespaces": False,
            "sharedVolumeClaim": {"create": False},
            "priorityClasses": {"create": False},
            "taintReconciler": {"enabled": False},
            "gpuQuota": {"enabled": False},
            "postgresql": {"enabled": False},
            "objectStore": {"createBuckets": False},
        }
    )
    assert kind_names(objects) == {
        ("ConfigMap", f"{R}-platform", R),
        ("Secret", f"{R}-object-store", R),
        ("Secret", f"{R}-object-store", T),
        ("Secret", f"{R}-object-store", S),
        ("Secret", f"{R}-minio-root", R),
    }


def test_objects_carry_the_standard_labels(default_objects):
    for obj in default_objects:
        labels = obj["metadata"].get("labels") or {}
        where = f"{obj['kind']} {obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/instance") == R, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/part-of") == "ml-platform", where
        assert "app.kubernetes.io/name" in labels, where
        assert "app.kubernetes.io/component" in labels, where


def test_namespaced_objects_name_their_namespace(default_objects):
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
    for obj in default_objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace"), f"{obj['kind']} {obj['metadata']['name']}"


# ------------------------------------------------------------------ Kubernetes schema
KUBE_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_object_is_valid_kubernetes(rendered_profiles, profile, kube_version):
    errors = []
    for obj in rendered_profiles[profile]:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(
                f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )
    assert not errors, "\n".join(errors)


# ------------------------------------------------------------------ lint
def test_helm_lint_strict_passes():
    out = helm("lint", "--strict", "--namespace", R, chart=chart_copy())
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_helm_lint_passes_for_each_profile(profile):
    args = ["lint", "--namespace", R]
    for f in PROFILES[profile]:
        args += ["--values", str(CHART / "ci" / f)]
    assert "0 chart(s) failed" in helm(*args, chart=chart_copy())


def test_helm_lint_of_the_real_chart_only_misses_the_upstream_charts():
    out = helm("lint", chart=CHART)
    warnings = [
        line
        for line in out.splitlines()
        if line.startswith("[WARNING]") or line.startswith("[ERROR]")
    ]
    assert (
        warnings
        == [
            f"[WARNING] {CHART}: chart directory is missing these dependencies: airflow,minio,nvidia-device-plugin"
        ]
        or warnings == []
    ), warnings


def test_values_and_chart_yaml_pass_yamllint_strict():
    files = [
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        *sorted((CHART / "ci").glob("*.yaml")),
        CHART / "charts" / "mlflow" / "Chart.yaml",
        CHART / "charts" / "mlflow" / "values.yaml",
    ]
    config = CHART.parents[1] / ".yamllint"
    proc = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(config), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
