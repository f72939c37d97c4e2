"""The chart lints, and each values profile renders exactly the objects it should, each valid
against the Kubernetes API schema (kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

import subprocess
import sys

import kubernetes_validate
import pytest
import yaml
from chart_render import (
    CHART,
    HELM,
    NO_GPU_POOLS,
    YAML_LOADER,
    chart_copy,
    helm,
    ours,
    prepared_chart,
    render_chart,
)
from helm_chart import PROFILES, profile_release

R = "ml-platform"  # release and release namespace
T, S = "ml-training", "ml-serving"
DP = "nvidia-device-plugin"  # the device plugin's own namespace


# ------------------------------------------------------------------ object sets, by feature
def served(name: str, ns: str) -> set[tuple[str, str, str | None]]:
    """A long-running server: its Deployment, Service, identity, NetworkPolicy and PDB."""
    kinds = ("Deployment", "Service", "ServiceAccount", "NetworkPolicy", "PodDisruptionBudget")
    return {(kind, name, ns) for kind in kinds}


def always(r: str, ns: str, t: str, s: str) -> set[tuple[str, str, str | None]]:
    return (
        served(f"{r}-mlflow", ns)
        | served(f"{r}-model-server", s)
        | {
            ("ConfigMap", f"{r}-platform", ns),
            ("ConfigMap", f"{r}-airflow-env", ns),
            ("ConfigMap", f"{r}-mlflow-env", ns),
            ("Namespace", t, None),
            ("Namespace", s, None),
            # Airflow's own keys, stable across renders (the official chart would regenerate them)
            ("Secret", f"{r}-airflow-fernet-key", ns),
            ("Secret", f"{r}-airflow-api-secret-key", ns),
            ("Secret", f"{r}-airflow-jwt-secret", ns),
            # KubernetesPodOperator RBAC, in the training and serving namespaces only
            ("Role", f"{r}-pod-launcher", t),
            ("Role", f"{r}-pod-launcher", s),
            ("RoleBinding", f"{r}-pod-launcher", t),
            ("RoleBinding", f"{r}-pod-launcher", s),
            # the identity of the pipeline pods, the bucket hook and the helm tests
            ("ServiceAccount", f"{r}-pipeline", ns),
            ("ServiceAccount", f"{r}-pipeline", t),
            ("ServiceAccount", f"{r}-pipeline", s),
            ("NetworkPolicy", f"{r}-training-deny-ingress", t),
            # helm test hooks
            ("Pod", f"{r}-test-mlflow", ns),
            ("Pod", f"{r}-test-buckets", ns),
            ("Pod", f"{r}-test-airflow", ns),
        }
    )


def gpu(r: str, ns: str, t: str) -> set[tuple[str, str, str | None]]:
    return {
        ("ServiceAccount", f"{r}-taint-reconciler", ns),
        ("ClusterRole", f"{r}-taint-reconciler", None),
        ("ClusterRoleBinding", f"{r}-taint-reconciler", None),
        ("Deployment", f"{r}-taint-reconciler", ns),
        ("NetworkPolicy", f"{r}-taint-reconciler", ns),
        ("ResourceQuota", f"{r}-gpu", t),
    }


PRIORITY_CLASSES = {("PriorityClass", "ml-training-gpu", None)}
DEVICE_PLUGIN = {  # the upstream chart in its own (privileged) namespace, lower-case names
    ("Namespace", DP, None),
    ("ServiceAccount", f"{R}-nvidia-device-plugin-service-account", DP),
    ("ClusterRole", f"{R}-nvidia-device-plugin-role", None),
    ("ClusterRoleBinding", f"{R}-nvidia-device-plugin-role-binding", None),
    ("DaemonSet", f"{R}-nvidia-device-plugin", DP),
    ("DaemonSet", f"{R}-nvidia-device-plugin-mps-control-daemon", DP),
}


def minio(r: str, ns: str, t: str, s: str) -> set[tuple[str, str, str | None]]:
    """MinIO (upstream chart) + its root Secret + the platform user's Secret + the bucket hook."""
    return {
        ("Deployment", f"{r}-minio", ns),
        ("Service", f"{r}-minio", ns),
        ("Service", f"{r}-minio-console", ns),
        ("ConfigMap", f"{r}-minio", ns),
        ("PersistentVolumeClaim", f"{r}-minio", ns),
        ("ServiceAccount", f"{r}-minio", ns),
        ("Job", f"{r}-minio-post-job", ns),  # MinIO's user/policy hook
        ("Secret", f"{r}-minio-root", ns),
        ("Secret", f"{r}-object-store", ns),
        ("Secret", f"{r}-object-store", t),
        ("Secret", f"{r}-object-store", s),
        ("NetworkPolicy", f"{r}-minio", ns),
        ("Job", f"{r}-create-buckets", ns),
    }


def postgresql(r: str, ns: str) -> set[tuple[str, str, str | None]]:
    return {
        ("StatefulSet", f"{r}-postgresql", ns),
        ("Service", f"{r}-postgresql", ns),
        ("Service", f"{r}-postgresql-hl", ns),
        ("PersistentVolumeClaim", f"{r}-postgresql-data", ns),
        ("Secret", f"{r}-postgresql", ns),
        ("ConfigMap", f"{r}-postgresql-initdb", ns),
        ("NetworkPolicy", f"{r}-postgresql", ns),
        ("Secret", f"{r}-airflow-metadata", ns),
        ("Secret", f"{r}-mlflow-backend-store", ns),
    }


DEFAULT = always(R, R, T, S) | gpu(R, R, T) | PRIORITY_CLASSES | minio(R, R, T, S)
DEFAULT |= postgresql(R, R) | DEVICE_PLUGIN
MLFLOW_AUTH = {
    ("Ingress", f"{R}-mlflow", R),
    ("Secret", f"{R}-mlflow-auth", R),
    ("Secret", f"{R}-mlflow-auth", T),
    ("Secret", f"{R}-mlflow-auth", S),
    ("Secret", f"{R}-mlflow-flask-secret", R),
}
BUCKET_HOOK = {("Job", f"{R}-create-buckets", R)}
EXTERNAL_S3 = always(R, R, T, S) | gpu(R, R, T) | PRIORITY_CLASSES | DEVICE_PLUGIN

EXPECTED = {
    "default": DEFAULT,
    # external S3 and DB with user-provided Secrets and pre-provisioned buckets: none of the bundled objects
    "external-s3-db": EXTERNAL_S3,
    # no static keys at all: no object-store Secret anywhere; the hook still creates the buckets
    "workload-identity": EXTERNAL_S3 | postgresql(R, R) | BUCKET_HOOK,
    # the pool choice changes values, not objects
    "h100-only": DEFAULT,
    "no-device-plugin": DEFAULT - DEVICE_PLUGIN,
    "git-dag-bundle": DEFAULT,
    "mlflow-ingress": DEFAULT | MLFLOW_AUTH,
    # release `platform` in namespace `mlp`, its own training/serving namespaces, sharing the
    # first release's device plugin and PriorityClass
    "second-release": always("platform", "mlp", "team-b-training", "team-b-serving")
    | gpu("platform", "mlp", "team-b-training")
    | minio("platform", "mlp", "team-b-training", "team-b-serving")
    | postgresql("platform", "mlp"),
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


def test_the_upstream_charts_are_rendered_not_skipped():
    prepared = prepared_chart()
    assert {dep.split()[0] for dep in prepared.included} == {
        "minio",
        "nvidia-device-plugin",
        "mlflow",
    }
    assert set(prepared.omitted) == {"airflow"}  # the one package no machine here can get


def test_no_gpu_pool_drops_the_reconciler_and_the_quota():
    objects = render_chart(NO_GPU_POOLS)
    assert kind_names(objects) == DEFAULT - gpu(R, R, T)


def test_optional_parts_can_all_be_switched_off():
    objects = render_chart(
        {
            "airflow": {"enabled": False},
            "mlflow": {"enabled": False},
            "modelServer": {"enabled": False},
            "tests": {"enabled": False},
            "networkPolicies": {"enabled": False},
            "createNamespaces": False,
            "priorityClasses": {"create": False},
            "taintReconciler": {"enabled": False},
            "gpuQuota": {"enabled": False},
            "postgresql": {"enabled": False},
            "objectStore": {"createBuckets": False},
            "nvidiaDevicePlugin": {"enabled": False},
        }
    )
    assert kind_names(objects) == {
        ("ConfigMap", f"{R}-platform", R),
        *(("ServiceAccount", f"{R}-pipeline", ns) for ns in (R, T, S)),
        *(
            o
            for o in minio(R, R, T, S)
            if o[0] != "NetworkPolicy" and o[1] != f"{R}-create-buckets"
        ),
    }


def test_objects_carry_the_standard_labels(default_objects):
    assert len(ours(default_objects)) > 50
    for obj in ours(default_objects):
        labels = obj["metadata"].get("labels") or {}
        where = f"{obj['kind']} {obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/instance") == R, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/part-of") == "ml-platform", where
        assert "app.kubernetes.io/name" in labels, where
        assert "app.kubernetes.io/component" in labels, where


def test_this_charts_namespaced_objects_name_their_namespace():
    """Ours name it (upstream MinIO does not; helm puts those in the release namespace)."""
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
    out = helm(
        "template", R, "--namespace", R, "--set", "generatedSecrets.seed=s", chart=chart_copy()
    )
    for obj in ours(filter(None, yaml.load_all(out, Loader=YAML_LOADER))):
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace"), f"{obj['kind']} {obj['metadata']['name']}"


# ------------------------------------------------------------------ Kubernetes schema
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema;
# the harness's API server (tests/cluster) validates 1.37 for real, so 1.30 is the slow extra.
KUBE_VERSIONS = [
    pytest.param("1.30.0", marks=pytest.mark.slow),
    kubernetes_validate.utils.latest_version(),
]


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
# `helm lint` renders as release `test-release` without a cluster, and in lint mode a `fail`
# of check-values is only logged ("[INFO] Fail: …") and lint exits 0 - having linted nothing
# after the refusal. So lint runs on values that render for that release (a seed; the platform
# ConfigMap's name, which the official chart does not template) and its output must hold no
# "Fail:"; what check-values refuses is tested in test_chart_check_values.py.
LINT_RELEASE = "test-release"


@pytest.fixture(scope="module")
def lint_values(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lint") / "lint-values.yaml"
    volume = {"name": "ml-platform-config", "configMap": {"name": f"{LINT_RELEASE}-platform"}}
    path.write_text(
        yaml.safe_dump(
            {"generatedSecrets": {"seed": "lint-seed"}, "airflow": {"volumes": [volume]}}
        )
    )
    return str(path)


def lint(*args: str, chart=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), "lint", *args, str(chart or chart_copy())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_helm_lint_strict_lints_every_profile_fully(profile, lint_values):
    _, namespace = profile_release(profile)
    files = [f for name in PROFILES[profile] for f in ("--values", str(CHART / "ci" / name))]
    result = lint("--strict", "--namespace", namespace, *files, "--values", lint_values)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "0 chart(s) failed" in output, output
    assert "Fail:" not in output, f"check-values refused the lint values:\n{output}"


def test_a_refusal_shows_in_lint_output(lint_values):
    """What the test above looks for: a chart that cannot render says so in lint's output."""
    result = lint("--strict", "--values", lint_values, "--set", "minio.enabled=false")
    assert "Fail:" in result.stderr and "No object store" in result.stderr


def test_helm_lint_of_the_real_chart_only_misses_the_upstream_charts(lint_values):
    out = lint("--values", lint_values, chart=CHART).stdout
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
