"""The release-wide knobs good charts have (names, labels, annotations, priority, spreading,
disruption budgets, an image registry mirror) and the upgrade-safe shapes of the stateful parts."""

from __future__ import annotations

import json

from chart_render import by_kind_name, ours, platform_config, pod_specs, render_chart

R = "ml-platform"


def images(objects) -> set[str]:
    return {
        c["image"]
        for o in objects
        for spec in pod_specs(o)
        for c in [*spec.get("initContainers", []), *spec["containers"]]
    }


def test_fullname_override_renames_this_charts_objects():
    objects = render_chart(
        {
            "fullnameOverride": "acme",
            "airflow": {"volumes": [{"name": "c", "configMap": {"name": "acme-platform"}}],
                        "volumeMounts": [{"name": "c", "mountPath": "/opt/airflow/platform"}],
                        "extraEnvFrom": "- configMapRef: {name: acme-airflow-env}\n"
                                        "- secretRef: {name: acme-object-store}\n"},
            "minio": {"users": [{"accessKey": "ml-platform", "existingSecret": "acme-object-store",
                                 "existingSecretKey": "AWS_SECRET_ACCESS_KEY", "policy": "ml-platform-buckets"}]},
            "mlflow": {"artifacts": {"credentialsSecret": "acme-object-store"}},
        }
    )  # fmt: skip
    names = {o["metadata"]["name"] for o in ours(objects)}
    assert {"acme-platform", "acme-model-server", "acme-object-store", "acme-pipeline"} <= names
    assert not [n for n in names if n.startswith(f"{R}-model") or n == f"{R}-platform"]
    assert (
        platform_config(objects, release="acme")["objectStoreSecret"]["name"] == "acme-object-store"
    )


def test_name_override_common_labels_and_pod_annotations_reach_every_object_and_pod():
    objects = render_chart(
        {
            "nameOverride": "mlp",
            "commonLabels": {"team": "ml", "cost-center": "ai-42"},
            "podAnnotations": {"example.com/owner": "ml-team"},
        }
    )
    mine = [
        o
        for o in ours(objects)
        if o["metadata"]["labels"]["helm.sh/chart"].startswith("ml-platform-")
    ]
    assert len(mine) > 30
    for obj in mine:
        labels = obj["metadata"]["labels"]
        assert labels["team"] == "ml" and labels["cost-center"] == "ai-42", obj["metadata"]["name"]
        assert labels["app.kubernetes.io/name"] == "mlp"
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            assert annotations["example.com/owner"] == "ml-team", obj["metadata"]["name"]
        if obj["kind"] == "Pod":
            assert obj["metadata"]["annotations"]["example.com/owner"] == "ml-team"
    # selectors follow the name, so Services still find their pods
    service = by_kind_name(objects, "Service", f"{R}-model-server")
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "mlp"


def test_priority_class_and_topology_spread_of_the_servers():
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
               "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "model-server"}}}]  # fmt: skip
    objects = render_chart(
        {
            "priorityClassName": "platform-critical",
            "modelServer": {"replicas": 2, "topologySpreadConstraints": spread},
            "mlflow": {
                "priorityClassName": "platform-critical",
                "topologySpreadConstraints": spread,
            },
        }
    )
    for kind, name in (
        ("Deployment", f"{R}-model-server"),
        ("Deployment", f"{R}-mlflow"),
        ("Deployment", f"{R}-taint-reconciler"),
        ("StatefulSet", f"{R}-postgresql"),
    ):
        spec = by_kind_name(objects, kind, name)["spec"]["template"]["spec"]
        assert spec["priorityClassName"] == "platform-critical", name
    for name in (f"{R}-model-server", f"{R}-mlflow"):
        spec = by_kind_name(objects, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["topologySpreadConstraints"] == spread


def test_servers_have_disruption_budgets_that_never_block_a_drain(default_objects):
    for name, namespace, component in (
        (f"{R}-model-server", "ml-serving", "model-server"),
        (f"{R}-mlflow", R, "tracking-server"),
    ):
        pdb = by_kind_name(default_objects, "PodDisruptionBudget", name, namespace)
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
    objects = render_chart(
        {
            "podDisruptionBudgets": {"enabled": False},
            "mlflow": {"podDisruptionBudget": {"enabled": False}},
        }
    )
    assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]


def test_global_image_registry_mirrors_every_image_of_this_chart():
    objects = render_chart({"global": {"imageRegistry": "registry.example.com/mirror"}})
    mine = images(ours(objects))
    assert mine == {
        "registry.example.com/mirror/ml-platform/trainer:0.1.0",
        "registry.example.com/mirror/ml-platform/platform-tools:0.1.0",
        "registry.example.com/mirror/ml-platform/taint-reconciler:0.1.0",
        "registry.example.com/mirror/library/postgres:17.9-bookworm",
        "registry.example.com/mirror/mlflow/mlflow:v3.17.2-full",
    }
    assert (
        platform_config(objects)["images"]["trainer"]
        == "registry.example.com/mirror/ml-platform/trainer:0.1.0"
    )
    connection = json.loads(
        by_kind_name(objects, "ConfigMap", f"{R}-airflow-env")["data"][
            "AIRFLOW_CONN_KUBERNETES_DEFAULT"
        ]
    )
    assert (
        connection["extra"]["xcom_sidecar_container_image"]
        == "registry.example.com/mirror/library/alpine:3.24.2"
    )


def test_per_image_overrides(default_objects):
    objects = render_chart(
        {
            "images": {
                "platformTools": {"repository": "registry.example.com/tools", "tag": "1.2.3"},
                "xcomSidecar": {"repository": "registry.example.com/alpine", "tag": "3.24.2"},
            }
        }
    )
    assert "registry.example.com/tools:1.2.3" in images(objects)
    env = by_kind_name(objects, "ConfigMap", f"{R}-airflow-env")["data"]
    assert "registry.example.com/alpine:3.24.2" in env["AIRFLOW_CONN_KUBERNETES_DEFAULT"]
    assert "ghcr.io/ml-platform/platform-tools:0.1.0" in images(default_objects)


def test_postgresql_size_change_leaves_the_statefulset_alone(default_objects):
    """volumeClaimTemplates are immutable, so the data volume is a plain PVC: a larger size
    patches the PVC (expansion) and `helm upgrade` never has to change the StatefulSet spec."""
    bigger = render_chart({"postgresql": {"persistence": {"size": "20Gi"}}})
    before = by_kind_name(default_objects, "StatefulSet", f"{R}-postgresql")
    after = by_kind_name(bigger, "StatefulSet", f"{R}-postgresql")
    assert before["spec"] == after["spec"]
    assert "volumeClaimTemplates" not in after["spec"]
    pvc = by_kind_name(bigger, "PersistentVolumeClaim", f"{R}-postgresql-data")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volumes = after["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "data",
        "persistentVolumeClaim": {"claimName": f"{R}-postgresql-data"},
    } in volumes


def test_postgresql_has_a_headless_governing_service(default_objects):
    statefulset = by_kind_name(default_objects, "StatefulSet", f"{R}-postgresql")
    headless = by_kind_name(default_objects, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == statefulset["spec"]["selector"]["matchLabels"]
    client = by_kind_name(default_objects, "Service", f"{R}-postgresql")
    assert "clusterIP" not in client["spec"]  # the clients' stable virtual IP
