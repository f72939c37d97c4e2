"""How the parts reach each other: every name one object refers to is rendered by the chart,
and every connection fact comes from one helper (object store, database, MLflow)."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote, urlsplit

import jmespath
import pytest
from chart_render import (
    DEFAULT_POOLS,
    by_kind_name,
    external_database,
    external_s3,
    ours,
    platform_config,
    pod_specs,
    render_chart,
    render_notes,
)

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
    # the platform's least-privilege MinIO user (minio.users), never MinIO's root
    assert creds["AWS_ACCESS_KEY_ID"] == "ml-platform"
    assert len(creds["AWS_SECRET_ACCESS_KEY"]) == 40
    root = secret_data(by_kind_name(default_objects, "Secret", "ml-platform-minio-root"))
    assert set(root) == {"rootUser", "rootPassword"} and len(root["rootPassword"]) == 40
    assert root["rootUser"] != creds["AWS_ACCESS_KEY_ID"]
    assert root["rootPassword"] != creds["AWS_SECRET_ACCESS_KEY"]


def test_minio_creates_the_platform_user_with_a_policy_limited_to_the_buckets(default_objects):
    config = by_kind_name(default_objects, "ConfigMap", f"{R}-minio")["data"]
    # MinIO's user job reads the user's secret key from the platform's Secret
    assert "echo ml-platform > $MINIO_ACCESSKEY_SECRETKEY_TMP" in config["add-user"]
    assert f"cat /config/secrets/{R}-object-store/AWS_SECRET_ACCESS_KEY" in config["add-user"]
    assert "createUser ml-platform-buckets" in config["add-user"]
    policy = json.loads(config["policy_0.json"])
    buckets = ["datasets", "logs", "mlflow", "processed", "xcom"]
    resources = sorted(r for st in policy["Statement"] for r in st["Resource"])
    assert resources == sorted(
        [f"arn:aws:s3:::{b}" for b in buckets] + [f"arn:aws:s3:::{b}/*" for b in buckets]
    )
    actions = {a for st in policy["Statement"] for a in st["Action"]}
    assert not [a for a in actions if a.startswith("admin:") or a == "s3:*"]
    assert "s3:ListAllMyBuckets" not in actions
    job = by_kind_name(default_objects, "Job", f"{R}-minio-post-job")
    projected = jmespath.search(
        "spec.template.spec.volumes[?name=='minio-configuration'].projected.sources[].secret.name",
        job,
    )
    assert projected == ["ml-platform-minio-root", f"{R}-object-store"]


def test_given_credentials_are_used_as_they_are():
    objects = render_chart(
        {"objectStore": {"credentials": {"secretAccessKey": "minio-secret-key"}}}
    )
    creds = secret_data(by_kind_name(objects, "Secret", f"{R}-object-store", "ml-training"))
    assert creds == {
        "AWS_ACCESS_KEY_ID": "ml-platform",
        "AWS_SECRET_ACCESS_KEY": "minio-secret-key",
    }
    external = render_chart(external_s3(keys=("AKIA1", "s3cr3t")))
    creds = secret_data(by_kind_name(external, "Secret", f"{R}-object-store", "ml-serving"))
    assert creds == {"AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}


def test_an_existing_object_store_secret_replaces_the_rendered_one(rendered_profiles):
    objects = rendered_profiles["external-s3-db"]
    assert not [
        o for o in objects if o["kind"] == "Secret" and "object-store" in o["metadata"]["name"]
    ]
    assert platform_config(objects)["objectStoreSecret"]["name"] == "acme-object-store"
    mlflow = by_kind_name(objects, "Deployment", f"{R}-mlflow")["spec"]["template"]["spec"]
    env = env_of(mlflow["containers"][0])
    assert env["AWS_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == "acme-object-store"


def test_workload_identity_renders_no_static_keys_anywhere(rendered_profiles):
    objects = rendered_profiles["workload-identity"]
    assert not [
        o for o in objects if o["kind"] == "Secret" and "object-store" in o["metadata"]["name"]
    ]
    for obj in objects:
        for spec in pod_specs(obj):
            for c in spec["containers"]:
                assert "AWS_SECRET_ACCESS_KEY" not in env_of(c), obj["metadata"]["name"]
                assert "envFrom" not in c or "object-store" not in json.dumps(c["envFrom"])
    config = platform_config(objects)
    assert config["objectStoreSecret"] is None
    assert config["serviceAccountName"] == f"{R}-pipeline"
    for namespace in (R, "ml-training", "ml-serving"):
        account = by_kind_name(objects, "ServiceAccount", f"{R}-pipeline", namespace)
        assert account["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ml-platform-pipeline"
        }
    job = by_kind_name(objects, "Job", f"{R}-create-buckets")["spec"]["template"]["spec"]
    assert job["serviceAccountName"] == f"{R}-pipeline"


def test_bucket_job_creates_the_one_bucket_list(default_objects):
    job = by_kind_name(default_objects, "Job", f"{R}-create-buckets")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert annotations["helm.sh/hook-weight"] == "5"  # after MinIO's user job (weight 0)
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "ghcr.io/ml-platform/platform-tools:0.1.0"
    assert container["args"] == [
        "ensure-buckets", "--wait-seconds=600", "datasets", "logs", "mlflow", "processed", "xcom",
    ]  # fmt: skip
    assert env_of(container)["AWS_ENDPOINT_URL"] == "http://ml-platform-minio.ml-platform.svc:9000"
    assert container["envFrom"] == [{"secretRef": {"name": f"{R}-object-store"}}]
    assert spec["serviceAccountName"] == f"{R}-pipeline"


def test_external_s3_replaces_minio_in_every_consumer():
    objects = render_chart(
        external_s3("https://storage.example.com", keys=("a", "b"), region="eu-central-1")
    )
    assert not [o for o in objects if "minio" in o["metadata"]["name"]]
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
        # the KubernetesPodOperator's connection: in-cluster, XCom sidecar image from the values
        "AIRFLOW_CONN_KUBERNETES_DEFAULT": '{"conn_type":"kubernetes","extra":{"in_cluster":true,"xcom_sidecar_container_image":"docker.io/library/alpine:3.24.2"}}',
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
    arns = [f"arn:aws:s3:::{b}" for b in buckets.values()]
    policy = {
        "name": "ml-platform-buckets",
        "statements": [
            {"actions": ["s3:ListBucket"], "resources": arns},
            {"actions": ["s3:GetObject"], "resources": [f"{a}/*" for a in arns]},
        ],
    }
    objects = render_chart({"objectStore": {"buckets": buckets}, "minio": {"policies": [policy]}})
    env = by_kind_name(objects, "ConfigMap", f"{R}-airflow-env")["data"]
    assert env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"] == "s3://aws_default@team-xcom/xcom"
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == "s3://team-logs/airflow"
    assert (
        by_kind_name(objects, "ConfigMap", f"{R}-mlflow-env")["data"][
            "MLFLOW_ARTIFACTS_DESTINATION"
        ]
        == "s3://team-mlflow"
    )
    hook = by_kind_name(objects, "Job", f"{R}-create-buckets")
    assert hook["spec"]["template"]["spec"]["containers"][0]["args"][2:] == sorted(buckets.values())


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
        external_database(host="db.example.com", port=6432, username="ml", password="p@ss/w:rd")
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


def test_mlflow_migrates_its_schema_before_it_serves(default_objects):
    """A new MLflow image may bring schema migrations: `mlflow db upgrade` runs first (a no-op
    when the schema is current; it creates the tables on an empty database)."""
    spec = by_kind_name(default_objects, "Deployment", f"{R}-mlflow")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert init["command"] == ["mlflow", "db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"]
    assert init["image"] == spec["containers"][0]["image"]
    assert (
        env_of(init)["MLFLOW_BACKEND_STORE_URI"]["secretKeyRef"]["name"]
        == f"{R}-mlflow-backend-store"
    )
    sqlite = render_chart({"mlflow": {"backendStore": {"type": "sqlite"}}})
    spec = by_kind_name(sqlite, "Deployment", f"{R}-mlflow")["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["command"][-1] == "sqlite:////mlflow/db/mlflow.db"
    assert {"name": "db", "mountPath": "/mlflow/db"} in spec["initContainers"][0]["volumeMounts"]


def test_mlflow_without_ingress_needs_no_login(default_objects):
    container = by_kind_name(default_objects, "Deployment", f"{R}-mlflow")["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["command"] == ["mlflow", "server"]
    assert platform_config(default_objects)["mlflowAuthSecret"] is None


def test_an_mlflow_ingress_turns_basic_auth_on_for_server_and_every_client(rendered_profiles):
    objects = rendered_profiles["mlflow-ingress"]
    container = by_kind_name(objects, "Deployment", f"{R}-mlflow")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["command"][:2] == ["sh", "-c"]
    assert 'exec mlflow server --app-name basic-auth "$@"' in container["command"][2]
    env = env_of(container)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == {
        "secretKeyRef": {"name": f"{R}-mlflow-auth", "key": "MLFLOW_TRACKING_PASSWORD"}
    }
    assert (
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["secretKeyRef"]["name"] == f"{R}-mlflow-flask-secret"
    )
    assert env["AUTH_DATABASE_URI"] == "$(MLFLOW_BACKEND_STORE_URI)"  # users in the same database
    # the client credentials, the same in the three namespaces; MLflow wants 12+ characters
    creds = {
        ns: secret_data(by_kind_name(objects, "Secret", f"{R}-mlflow-auth", ns))
        for ns in (R, "ml-training", "ml-serving")
    }
    assert len({json.dumps(c, sort_keys=True) for c in creds.values()}) == 1
    assert creds[R]["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert len(creds[R]["MLFLOW_TRACKING_PASSWORD"]) >= 12
    # every client logs in: the pipeline pods (platform.json), the model server, helm test
    assert platform_config(objects)["mlflowAuthSecret"] == {
        "name": f"{R}-mlflow-auth",
        "usernameKey": "MLFLOW_TRACKING_USERNAME",
        "passwordKey": "MLFLOW_TRACKING_PASSWORD",
    }
    server = by_kind_name(objects, "Deployment", f"{R}-model-server", "ml-serving")
    assert server["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": f"{R}-mlflow-auth"}}
    ]
    test = by_kind_name(objects, "Pod", f"{R}-test-mlflow")
    assert test["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": f"{R}-mlflow-auth"}}]


def test_rds_tls_verifies_against_the_mounted_ca_bundle(rendered_profiles):
    """The external-database example: verify-full with the CA bundle mounted where sslrootcert
    points, in MLflow (and its db-upgrade) and in every Airflow container."""
    objects = rendered_profiles["external-s3-db"]
    spec = by_kind_name(objects, "Deployment", f"{R}-mlflow")["spec"]["template"]["spec"]
    assert {"name": "database-ca", "configMap": {"name": "rds-ca-bundle"}} in spec["volumes"]
    for container in (*spec["initContainers"], *spec["containers"]):
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/etc/ml-platform/database-ca" in mounts, container["name"]
    # with database.createSecrets the chart writes sslrootcert into the URIs itself
    objects = render_chart(
        {
            "database": {"createSecrets": True},
            "externalDatabase": {
                "username": "ml",
                "password": "pw",
                "sslRootCert": "/etc/ml-platform/database-ca/global-bundle.pem",
            },
        },
        values_files=["external-s3-db-values.yaml"],  # the CA bundle mounts
    )
    uri = secret_data(by_kind_name(objects, "Secret", "ml-platform-airflow-metadata"))["connection"]
    assert (
        urlsplit(uri).query
        == "sslmode=verify-full&sslrootcert=/etc/ml-platform/database-ca/global-bundle.pem"
    )


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
def test_model_server_follows_the_champion_and_is_ready_without_one(default_objects):
    deployment = by_kind_name(default_objects, "Deployment", f"{R}-model-server", "ml-serving")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/ml-platform/trainer:0.1.0"
    assert container["command"] == ["trainer", "serve"]
    assert container["args"] == [
        "--model-name=digits-classifier",
        "--port=8080",
        "--poll-seconds=30",
    ]
    env = env_of(container)
    assert env["MLFLOW_TRACKING_URI"] == "http://ml-platform-mlflow.ml-platform.svc:5000"
    assert "AWS_SECRET_ACCESS_KEY" not in env  # artifacts come through the MLflow proxy
    # ready from the start: every probe is /health (200 with or without a champion), and the
    # startup probe gives up after minutes, not after a day
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] <= 600


def test_shared_volume_is_off_by_default_and_read_write_many_when_on(default_objects):
    assert not [o for o in default_objects if o["metadata"]["name"] == "ml-shared-pvc"]
    assert platform_config(default_objects)["sharedVolume"] is None
    objects = render_chart({"sharedVolume": {"enabled": True}})
    pvc = by_kind_name(objects, "PersistentVolumeClaim", "ml-shared-pvc", "ml-training")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert platform_config(objects)["sharedVolume"] == {
        "claimName": "ml-shared-pvc",
        "mountPath": "/shared",
    }
    assert not [
        o
        for o in objects
        if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["namespace"] == "ml-serving"
    ]


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
    args = {name: t["spec"]["containers"][0]["args"] for name, t in tests.items()}
    assert args[f"{R}-test-airflow"] == [
        "check-airflow", "--url=http://ml-platform-api-server.ml-platform.svc:8080",
    ]  # fmt: skip
    assert args[f"{R}-test-mlflow"] == [
        "check-mlflow", "--tracking-uri=http://ml-platform-mlflow.ml-platform.svc:5000",
    ]  # fmt: skip
    assert args[f"{R}-test-buckets"] == [
        "check-buckets",
        "datasets",
        "logs",
        "mlflow",
        "processed",
        "xcom",
    ]


def test_notes_tell_how_to_reach_the_uis_and_trigger_the_dag():
    notes = render_notes()
    assert "port-forward svc/ml-platform-api-server 8080:8080" in notes
    assert "port-forward svc/ml-platform-mlflow 5000:5000" in notes
    assert "airflow dags trigger" in notes
    assert "get secret ml-platform-object-store" in notes
    assert "helm test ml-platform" in notes
    assert (
        f"GPU pools {', '.join(DEFAULT_POOLS)} (taint nvidia.com/gpu=present:NoSchedule)" in notes
    )


def test_notes_for_external_services():
    notes = render_notes(values_files=["external-s3-db-values.yaml"])
    assert (
        "Object store : external at https://s3.eu-west-1.amazonaws.com (region eu-west-1)" in notes
    )
    assert "MinIO" not in notes and "dev-grade" not in notes


def test_image_pull_secrets_reach_every_pod_of_this_chart():
    objects = render_chart({"imagePullSecrets": ["ghcr"], "mlflow": {"imagePullSecrets": ["ghcr"]}})
    pods = [(o["metadata"]["name"], spec) for o in ours(objects) for spec in pod_specs(o)]
    assert len(pods) >= 8
    for name, spec in pods:
        assert spec.get("imagePullSecrets") == [{"name": "ghcr"}], name
