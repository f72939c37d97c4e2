"""How the parts reach each other: every name one object refers to is rendered by the chart,
and every connection fact comes from one helper (object store, database, MLflow)."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

import jmespath
import pytest
from chart_render import by_kind_name, render_chart, render_notes

R = "ml-platform"
MLFLOW = "charts/mlflow/templates/mlflow-deployment.yaml"


def secret_data(obj):
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# ------------------------------------------------------------------ object store
def test_object_store_credentials_are_the_same_everywhere(default_objects):
    secrets = [
        o
        for o in default_objects
        if o["kind"] == "Secret" and o["metadata"]["name"] == f"{R}-object-store"
    ]
    assert {s["metadata"]["namespace"] for s in secrets} == {R, "ml-training", "ml-serving"}
    values = {tuple(sorted(secret_data(s).items())) for s in secrets}
    assert len(values) == 1
    creds = dict(values.pop())
    assert set(creds) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert len(creds["AWS_ACCESS_KEY_ID"]) == 20 and len(creds["AWS_SECRET_ACCESS_KEY"]) == 40
    minio_root = secret_data(by_kind_name(default_objects, "Secret", "ml-platform-minio-root"))
    assert minio_root == {
        "rootUser": creds["AWS_ACCESS_KEY_ID"],
        "rootPassword": creds["AWS_SECRET_ACCESS_KEY"],
    }


def test_given_credentials_are_used_as_they_are():
    objects = render_chart(
        {
            "objectStore": {
                "credentials": {"accessKeyId": "minioadmin", "secretAccessKey": "minio-secret-key"}
            }
        }
    )
    creds = secret_data(by_kind_name(objects, "Secret", f"{R}-object-store", "ml-training"))
    assert creds == {"AWS_ACCESS_KEY_ID": "minioadmin", "AWS_SECRET_ACCESS_KEY": "minio-secret-key"}


def test_bucket_job_creates_the_one_bucket_list(default_objects):
    job = by_kind_name(default_objects, "Job", f"{R}-create-buckets")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert env["BUCKETS"].split() == sorted(["datasets", "processed", "mlflow", "xcom", "logs"])
    assert env["AWS_ENDPOINT_URL"] == "http://ml-platform-minio.ml-platform.svc:9000"
    assert container["envFrom"] == [{"secretRef": {"name": f"{R}-object-store"}}]
    assert container["image"] == "ghcr.io/ml-platform/trainer:0.1.0"


def test_external_s3_replaces_minio_in_every_consumer():
    objects = render_chart(
        {
            "minio": {"enabled": False},
            "externalS3": {
                "enabled": True,
                "endpoint": "https://storage.example.com",
                "region": "eu-central-1",
            },
            "objectStore": {"credentials": {"accessKeyId": "a", "secretAccessKey": "b"}},
        }
    )
    text = str(objects)
    assert "minio" not in text.replace("ml-platform-minio-root", "")
    airflow_env = by_kind_name(objects, "ConfigMap", f"{R}-airflow-env")["data"]
    mlflow_env = by_kind_name(objects, "ConfigMap", f"{R}-mlflow-env")["data"]
    assert (
        airflow_env["AWS_ENDPOINT_URL"]
        == mlflow_env["MLFLOW_S3_ENDPOINT_URL"]
        == "https://storage.example.com"
    )
    assert airflow_env["AWS_DEFAULT_REGION"] == mlflow_env["AWS_DEFAULT_REGION"] == "eu-central-1"
    job = by_kind_name(objects, "Job", f"{R}-create-buckets")
    assert (
        env_of(job["spec"]["template"]["spec"]["containers"][0])["AWS_DEFAULT_REGION"]
        == "eu-central-1"
    )


# ------------------------------------------------------------------ Airflow
def test_airflow_env_wires_connection_xcom_and_logs(default_objects):
    env = by_kind_name(default_objects, "ConfigMap", f"{R}-airflow-env")["data"]
    assert env == {
        "ML_PLATFORM_CONFIG": "/opt/airflow/platform/platform.json",
        "ML_PIPELINE_RUNTIME": "kubernetes",
        "MLFLOW_TRACKING_URI": "http://ml-platform-mlflow.ml-platform.svc:5000",
        "AWS_ENDPOINT_URL": "http://ml-platform-minio.ml-platform.svc:9000",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type":"aws","extra":{"endpoint_url":"http://ml-platform-minio.ml-platform.svc:9000","region_name":"us-east-1"}}',
        "AIRFLOW__CORE__XCOM_BACKEND": "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": "s3://aws_default@xcom/xcom",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "65536",
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": "s3://logs/airflow",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "aws_default",
    }


def test_bucket_names_come_from_the_one_list():
    buckets = {
        "datasets": "team-datasets",
        "processed": "team-processed",
        "mlflow": "team-mlflow",
        "xcom": "team-xcom",
        "logs": "team-logs",
    }
    objects = render_chart({"objectStore": {"buckets": buckets}})
    env = by_kind_name(objects, "ConfigMap", f"{R}-airflow-env")["data"]
    assert env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"] == "s3://aws_default@team-xcom/xcom"
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == "s3://team-logs/airflow"
    assert (
        by_kind_name(objects, "ConfigMap", f"{R}-mlflow-env")["data"][
            "MLFLOW_ARTIFACTS_DESTINATION"
        ]
        == "s3://team-mlflow"
    )


def test_airflow_metadata_secret_points_at_the_database(default_objects):
    uri = secret_data(by_kind_name(default_objects, "Secret", "ml-platform-airflow-metadata"))[
        "connection"
    ]
    password = secret_data(by_kind_name(default_objects, "Secret", f"{R}-postgresql"))["password"]
    parts = urlsplit(uri)
    assert (parts.scheme, parts.username, parts.hostname, parts.port, parts.path) == (
        "postgresql", "ml_platform", "ml-platform-postgresql.ml-platform.svc", 5432, "/airflow",
    )  # fmt: skip
    assert parts.password == password and len(password) == 32


def test_external_database_uris_are_url_encoded():
    objects = render_chart(
        {
            "postgresql": {"enabled": False},
            "externalDatabase": {
                "enabled": True,
                "host": "db.example.com",
                "port": 6432,
                "username": "ml",
                "password": "p@ss/w:rd",
            },
        }
    )
    airflow = urlsplit(
        secret_data(by_kind_name(objects, "Secret", "ml-platform-airflow-metadata"))["connection"]
    )
    mlflow = urlsplit(
        secret_data(by_kind_name(objects, "Secret", f"{R}-mlflow-backend-store"))[
            "MLFLOW_BACKEND_STORE_URI"
        ]
    )
    for uri, db in ((airflow, "/airflow"), (mlflow, "/mlflow")):
        assert (uri.hostname, uri.port, uri.path, uri.query) == (
            "db.example.com",
            6432,
            db,
            "sslmode=require",
        )
        assert unquote(uri.password) == "p@ss/w:rd"
    assert mlflow.scheme == "postgresql+psycopg2"


def test_metadata_secret_follows_the_airflow_value():
    objects = render_chart({"airflow": {"data": {"metadataSecretName": "team-a-airflow-db"}}})
    by_kind_name(objects, "Secret", "team-a-airflow-db")


def test_pod_launcher_binding_follows_the_worker_service_account():
    objects = render_chart(
        {
            "airflow": {"workers": {"kubernetes": {"serviceAccount": {"name": "wrk"}}}},
            "podLauncherRbac": {"extraServiceAccounts": ["trg", "wrk"]},
        }
    )
    binding = by_kind_name(objects, "RoleBinding", f"{R}-pod-launcher", "ml-training")
    assert jmespath.search("subjects[].name", binding) == [
        "wrk",
        "ml-platform-airflow-triggerer",
        "trg",
    ]


# ------------------------------------------------------------------ MLflow
def test_mlflow_server_arguments(default_objects):
    deployment = by_kind_name(default_objects, "Deployment", f"{R}-mlflow")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/mlflow/mlflow:v3.17.2-full"
    args = container["args"]
    assert "--serve-artifacts" in args
    assert not any(a.startswith("--backend-store-uri") for a in args)  # postgresql: from the Secret
    hosts = next(a for a in args if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    for host in (
        "ml-platform-mlflow",
        "ml-platform-mlflow:*",
        "ml-platform-mlflow.ml-platform.svc:*",
        "localhost:*",
    ):
        assert host in hosts
    env = env_of(container)
    assert env["MLFLOW_BACKEND_STORE_URI"] == {
        "secretKeyRef": {"name": f"{R}-mlflow-backend-store", "key": "MLFLOW_BACKEND_STORE_URI"}
    }
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": f"{R}-object-store", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert container["envFrom"] == [{"configMapRef": {"name": f"{R}-mlflow-env"}}]
    assert jmespath.search("startupProbe.httpGet.path", container) == "/health"


def test_mlflow_env_names_the_artifact_destination(default_objects):
    assert by_kind_name(default_objects, "ConfigMap", f"{R}-mlflow-env")["data"] == {
        "MLFLOW_ARTIFACTS_DESTINATION": "s3://mlflow",
        "MLFLOW_S3_ENDPOINT_URL": "http://ml-platform-minio.ml-platform.svc:9000",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_mlflow_ingress_host_is_an_allowed_host():
    objects = render_chart(
        {
            "mlflow": {
                "ingress": {
                    "enabled": True,
                    "className": "nginx",
                    "hosts": [{"host": "mlflow.example.com"}],
                }
            }
        }
    )
    ingress = by_kind_name(objects, "Ingress", f"{R}-mlflow")
    assert jmespath.search("spec.rules[0].http.paths[0].backend.service", ingress) == {
        "name": f"{R}-mlflow",
        "port": {"name": "http"},
    }
    args = by_kind_name(objects, "Deployment", f"{R}-mlflow")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    hosts = next(a for a in args if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert "mlflow.example.com" in hosts and "mlflow.example.com:*" in hosts


def test_mlflow_sqlite_backend_uses_a_volume_and_recreate():
    objects = render_chart({"mlflow": {"backendStore": {"type": "sqlite"}}})
    by_kind_name(objects, "PersistentVolumeClaim", f"{R}-mlflow-db")
    deployment = by_kind_name(objects, "Deployment", f"{R}-mlflow")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--backend-store-uri=sqlite:////mlflow/db/mlflow.db" in args
    assert not [o for o in objects if o["metadata"]["name"] == f"{R}-mlflow-backend-store"]


# ------------------------------------------------------------------ GPU
def test_taint_reconciler_reads_the_platform_config(default_objects):
    deployment = by_kind_name(default_objects, "Deployment", f"{R}-taint-reconciler")
    spec = deployment["spec"]["template"]["spec"]
    assert {"name": "platform-config", "configMap": {"name": f"{R}-platform"}} in spec["volumes"]
    assert "--config=/etc/ml-platform/platform.json" in spec["containers"][0]["args"]
    assert spec["serviceAccountName"] == f"{R}-taint-reconciler"
    assert "checksum/platform-config" in deployment["spec"]["template"]["metadata"]["annotations"]


def test_gpu_quota_and_priority_class(default_objects):
    quota = by_kind_name(default_objects, "ResourceQuota", f"{R}-gpu", "ml-training")
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "16"}
    pc = by_kind_name(default_objects, "PriorityClass", "ml-training-gpu")
    assert (pc["value"], pc["preemptionPolicy"], pc["globalDefault"]) == (
        100000,
        "PreemptLowerPriority",
        False,
    )


# ------------------------------------------------------------------ serving and training
def test_model_server_serves_the_champion(default_objects):
    deployment = by_kind_name(default_objects, "Deployment", f"{R}-model-server", "ml-serving")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    assert "models:/${MODEL_NAME}@champion" in script
    env = env_of(container)
    assert env["MODEL_NAME"] == "digits-classifier"
    assert env["MLFLOW_TRACKING_URI"] == "http://ml-platform-mlflow.ml-platform.svc:5000"
    assert "AWS_SECRET_ACCESS_KEY" not in env  # artifacts come through the MLflow proxy


def test_shared_volume_claim(default_objects):
    pvc = by_kind_name(default_objects, "PersistentVolumeClaim", "ml-shared-pvc", "ml-training")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    ("name", "namespace", "port", "from_namespaces"),
    [
        (f"{R}-mlflow", R, 5000, [R, "ml-training", "ml-serving"]),
        (f"{R}-minio", R, 9000, [R, "ml-training", "ml-serving"]),
        (f"{R}-postgresql", R, 5432, None),
        (f"{R}-model-server", "ml-serving", "http", ["ml-serving", R]),
    ],
)
def test_network_policies_admit_only_the_platform(
    default_objects, name, namespace, port, from_namespaces
):
    policy = by_kind_name(default_objects, "NetworkPolicy", name, namespace)
    rule = policy["spec"]["ingress"][0]
    assert rule["ports"][0]["port"] == port
    if from_namespaces is None:
        assert rule["from"] == [{"podSelector": {}}]  # same namespace only
    else:
        assert (
            jmespath.search(
                'from[].namespaceSelector.matchLabels."kubernetes.io/metadata.name"', rule
            )
            == from_namespaces
        )


def test_training_namespace_denies_all_ingress(default_objects):
    policy = by_kind_name(
        default_objects, "NetworkPolicy", f"{R}-training-deny-ingress", "ml-training"
    )
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_ingress_controller_can_be_admitted():
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    objects = render_chart({"networkPolicies": {"ingressFrom": [peer]}})
    for name, namespace in ((f"{R}-mlflow", R), (f"{R}-model-server", "ml-serving")):
        assert (
            peer
            in by_kind_name(objects, "NetworkPolicy", name, namespace)["spec"]["ingress"][0]["from"]
        )


def test_helm_tests_check_mlflow_buckets_and_airflow(default_objects):
    tests = {o["metadata"]["name"]: o for o in default_objects if o["kind"] == "Pod"}
    assert {t["metadata"]["annotations"]["helm.sh/hook"] for t in tests.values()} == {"test"}
    airflow = env_of(tests[f"{R}-test-airflow"]["spec"]["containers"][0])
    assert airflow["AIRFLOW_API"] == "http://ml-platform-api-server.ml-platform.svc:8080"
    mlflow = env_of(tests[f"{R}-test-mlflow"]["spec"]["containers"][0])
    assert mlflow["MLFLOW_TRACKING_URI"] == "http://ml-platform-mlflow.ml-platform.svc:5000"


def test_notes_tell_how_to_reach_the_uis_and_trigger_the_dag():
    notes = render_notes()
    assert "port-forward svc/ml-platform-api-server 8080:8080" in notes
    assert "port-forward svc/ml-platform-mlflow 5000:5000" in notes
    assert "airflow dags trigger" in notes
    assert "get secret ml-platform-object-store" in notes
    assert "helm test ml-platform" in notes
    assert "GPU pools a100, h100 (taint nvidia.com/gpu=present:NoSchedule)" in notes


def test_notes_for_external_services():
    notes = render_notes(values_files=["external-s3-db-values.yaml"])
    assert (
        "Object store : external at https://s3.eu-west-1.amazonaws.com (region eu-west-1)" in notes
    )
    assert "MinIO" not in notes and "dev-grade" not in notes


def test_image_pull_secrets_reach_every_pod():
    from chart_render import pod_specs

    objects = render_chart({"imagePullSecrets": ["ghcr"], "mlflow": {"imagePullSecrets": ["ghcr"]}})
    pods = [(o["metadata"]["name"], spec) for o in objects for spec in pod_specs(o)]
    assert pods
    for name, spec in pods:
        assert spec.get("imagePullSecrets") == [{"name": "ghcr"}], name
