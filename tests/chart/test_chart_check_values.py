"""templates/check-values.yaml: impossible combinations fail with one readable message that
says what to change."""

from __future__ import annotations

import pytest
from chart_render import (
    DEFAULT_POOLS,
    NO_GPU_POOLS,
    HelmError,
    external_database,
    external_s3,
    render_chart,
    render_error,
)

NO_PLUGIN_SELECTION = {
    "nvidiaDevicePlugin": {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "gpu-type", "operator": "In", "values": ["a100"]}
                            ]
                        }
                    ]
                }
            }
        }
    }
}

CASES = [
    pytest.param(
        {"minio": {"enabled": False}},
        "No object store: minio.enabled and externalS3.enabled are both false",
        id="object-store-off-and-no-external-s3",
    ),
    pytest.param(
        {
            "externalS3": {"enabled": True, "endpoint": "https://s3.example.com"},
            "objectStore": {"credentials": {"accessKeyId": "a", "secretAccessKey": "b"}},
        },
        "Two object stores",
        id="minio-and-external-s3",
    ),
    pytest.param(
        {"minio": {"enabled": False}, "externalS3": {"enabled": True}},
        "externalS3.endpoint is empty",
        id="external-s3-without-endpoint",
    ),
    pytest.param(
        external_s3(),
        "externalS3 with auth=accessKeys needs credentials",
        id="external-s3-without-credentials",
    ),
    pytest.param(
        external_s3(keys=("a", "b"), auth="workloadIdentity"),
        "externalS3.auth=workloadIdentity uses no static keys",
        id="workload-identity-with-static-keys",
    ),
    pytest.param(
        external_s3(auth="workloadIdentity"),
        "renders no object-store Secret, but mlflow.artifacts.credentialsSecret names",
        id="workload-identity-with-an-mlflow-secret",
    ),
    pytest.param(
        {"mlflow": {"artifacts": {"credentialsSecret": "other"}}},
        "set mlflow.artifacts.credentialsSecret=ml-platform-object-store",
        id="mlflow-reads-another-object-store-secret",
    ),
    pytest.param(
        {"minio": {"users": []}},
        "minio.users has no platform user",
        id="minio-without-the-platform-user",
    ),
    pytest.param(
        {
            "minio": {
                "users": [
                    {
                        "accessKey": "ml-platform",
                        "existingSecret": "{{ .Release.Name }}-object-store",
                        "existingSecretKey": "AWS_SECRET_ACCESS_KEY",
                        "policy": "readwrite",
                    }
                ]
            }
        },
        'the policy "readwrite", which minio.policies does not define',
        id="platform-user-with-an-undefined-policy",
    ),
    pytest.param(
        {
            "objectStore": {
                "buckets": {
                    "datasets": "team-datasets",
                    "processed": "processed",
                    "mlflow": "mlflow",
                    "xcom": "xcom",
                    "logs": "logs",
                }
            }
        },
        "but objectStore.buckets needs exactly arn:aws:s3:::logs",
        id="minio-policy-out-of-step-with-the-buckets",
    ),
    pytest.param(
        {"minio": {"buckets": [{"name": "datasets"}]}},
        "minio.buckets is set, but the buckets come from objectStore.buckets",
        id="minio-buckets-twice",
    ),
    pytest.param(
        {"objectStore": {"credentials": {"accessKeyId": "AKIA"}}},
        "objectStore.credentials.accessKeyId is for external S3",
        id="access-key-with-minio",
    ),
    pytest.param(
        {"gpuTaint": {"key": "", "value": "", "effect": ""}},
        f"GPU pools {', '.join(DEFAULT_POOLS)} are enabled but gpuTaint has no key or effect",
        id="gpu-pool-without-taint",
    ),
    pytest.param(
        {"gpuPools": {"h100": {"priorityClassName": "urgent"}}},
        'gpuPools.h100.priorityClassName is "urgent", which priorityClasses.classes does not define',
        id="undefined-priority-class",
    ),
    pytest.param(
        {"gpuPools": {"h100": {"gpusPerPod": 8}}, "gpuQuota": {"gpus": 4}},
        "gpuPools.h100.gpusPerPod (8) is more than the training namespace's GPU quota gpuQuota.gpus (4)",
        id="pod-larger-than-quota",
    ),
    pytest.param(
        NO_PLUGIN_SELECTION,
        "The NVIDIA device plugin would not run on gpuPools.h100",
        id="device-plugin-misses-a-pool",
    ),
    pytest.param(
        {
            "nvidiaDevicePlugin": {
                "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
            }
        },
        "nvidiaDevicePlugin.tolerations do not tolerate gpuTaint nvidia.com/gpu=present:NoSchedule",
        id="device-plugin-does-not-tolerate-the-taint",
    ),
    pytest.param(
        {"gpuPools": {"h100": {"nodeLabels": {"gpu-type": "a100", "node-pool": "ml-training"}}}},
        "gpuPools.a100 and gpuPools.h100 select the same nodes",
        id="two-pools-same-nodes",
    ),
    pytest.param(
        {"externalDatabase": {"enabled": True, "host": "db", "username": "u", "password": "p"}},
        "Two databases",
        id="two-databases",
    ),
    pytest.param(
        {"postgresql": {"enabled": False}},
        "No database: Airflow (airflow.enabled) or MLflow (mlflow.backendStore.type=postgresql) needs PostgreSQL",
        id="no-database",
    ),
    pytest.param(
        {"postgresql": {"enabled": False}, "externalDatabase": {"enabled": True, "host": "db"}},
        "externalDatabase needs externalDatabase.username and .password",
        id="external-database-without-credentials",
    ),
    pytest.param(
        external_database(sslmode="verify-full"),
        "externalDatabase.sslmode=verify-full verifies the server certificate",
        id="verify-full-without-a-ca",
    ),
    pytest.param(
        external_database(sslmode="verify-full", sslRootCert="/etc/db-ca/ca.pem"),
        "airflow.volumeMounts mounts nothing at /etc/db-ca",
        id="ca-bundle-not-mounted",
    ),
    pytest.param(
        {"airflow": {"postgresql": {"enabled": True}}},
        "Bitnami PostgreSQL",
        id="bitnami-postgresql",
    ),
    pytest.param(
        {"airflow": {"workers": {"kubernetes": {"serviceAccount": {"name": None}}}}},
        "airflow.workers.kubernetes.serviceAccount.name is empty",
        id="pod-launcher-without-service-account",
    ),
    pytest.param(
        {"airflow": {"triggerer": {"serviceAccount": {"name": None}}}},
        "airflow.triggerer.serviceAccount.name is empty",
        id="pod-launcher-without-triggerer-account",
    ),
    pytest.param(
        {"airflow": {"volumes": [{"name": "ml-platform-config", "configMap": {"name": "other"}}]}},
        "Airflow would not see the platform config: airflow.volumes must hold a volume of ConfigMap ml-platform-platform",
        id="airflow-without-platform-config",
    ),
    pytest.param(
        {"airflow": {"extraEnvFrom": "- configMapRef: {name: ml-platform-airflow-env}\n"}},
        "airflow.extraEnvFrom does not load ml-platform-object-store",
        id="airflow-without-object-store-credentials",
    ),
    pytest.param(
        {
            "mlflow": {"ingress": {"enabled": True, "hosts": [{"host": "mlflow.example.com"}]}},
            "airflow": {
                "extraEnvFrom": "- configMapRef: {name: ml-platform-airflow-env}\n"
                "- secretRef: {name: ml-platform-object-store}\n"
            },
        },
        "airflow.extraEnvFrom does not load ml-platform-mlflow-auth",
        id="airflow-without-mlflow-credentials",
    ),
    pytest.param(
        {"mlflow": {"ingress": {"enabled": True}, "auth": {"credentialsSecret": ""}}},
        "basic auth is on (auth.enabled, or auto with the Ingress enabled) but auth.credentialsSecret",
        id="mlflow-auth-without-credentials",
    ),
    pytest.param(
        {"airflow": {"jwtSecretName": ""}},
        "airflow.fernetKeySecretName, .apiSecretKeySecretName and .jwtSecretName must all be set",
        id="airflow-key-secret-unnamed",
    ),
    pytest.param(
        {"nvidiaDevicePlugin": {"namespaceOverride": ""}},
        "the device plugin's privileged pods (host paths, host PID) would share a namespace",
        id="device-plugin-in-the-release-namespace",
    ),
    pytest.param(
        {"namespaces": {"training": "ml-platform"}},
        'is the release namespace "ml-platform", which this chart would create again',
        id="training-in-the-release-namespace",
    ),
    pytest.param(
        {"namespaces": {"serving": "ml-training"}},
        'namespaces.training and namespaces.serving are both "ml-training"',
        id="one-namespace-for-both",
    ),
    pytest.param(
        {"mlflow": {"backendStore": {"type": "sqlite"}, "replicaCount": 2}},
        "replicaCount must be 0 or 1",
        id="mlflow-sqlite-with-replicas",
    ),
]


@pytest.mark.parametrize(("values", "message"), CASES)
def test_impossible_values_fail_with_a_readable_message(values, message):
    error = render_error(values)
    assert message in error, error


def test_all_problems_are_listed_at_once():
    error = render_error({"minio": {"enabled": False}, "postgresql": {"enabled": False}})
    assert "No object store" in error
    assert "No database" in error
    assert "the values cannot work together" in error


def test_a_pool_can_be_disabled_or_removed():
    render_chart({"gpuPools": {"a100": {"enabled": False}}})
    render_chart({"gpuPools": {"a100": None}})


def test_device_plugin_selection_is_not_checked_when_it_is_off():
    values = {**NO_PLUGIN_SELECTION}
    values["nvidiaDevicePlugin"] = {**values["nvidiaDevicePlugin"], "enabled": False}
    render_chart(values)


def test_cpu_only_platform_needs_no_taint():
    render_chart(
        {
            **NO_GPU_POOLS,
            "gpuTaint": {"key": "", "value": "", "effect": ""},
        }
    )


def test_external_everything_with_rendered_secrets_is_fine():
    render_chart(
        {
            **external_s3(keys=("AKIA", "secret"), region="eu-west-1"),
            **external_database(host="db.example.com", username="ml", password="p@ss/word"),
        }
    )


def test_another_release_name_is_told_which_config_map_to_mount():
    with pytest.raises(
        HelmError, match=r"set airflow\.volumes\[0\]\.configMap\.name=prod-platform"
    ):
        render_chart(name="prod")
    render_chart(PROD_VOLUMES, name="prod")


PROD_VOLUMES = {
    "airflow": {"volumes": [{"name": "ml-platform-config", "configMap": {"name": "prod-platform"}}]}
}
