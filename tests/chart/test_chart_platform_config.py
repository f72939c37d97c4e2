"""ConfigMap <release>-platform (docs/CONTRACTS.md section 3): exactly the JSON the DAGs and the
taint reconciler read, rendered from the one definition in values.yaml."""

from __future__ import annotations

import json
import sys

import pytest
from chart_render import REPO, platform_config, render_chart

# The reference rendering: `helm template ml-platform charts/ml-platform --namespace ml-platform`.
EXPECTED_DEFAULT = {
    "namespaces": {"training": "ml-training", "serving": "ml-serving"},
    "buckets": {
        "datasets": "datasets",
        "processed": "processed",
        "mlflow": "mlflow",
        "xcom": "xcom",
        "logs": "logs",
    },
    "model": {"name": "digits-classifier", "experiment": "ml-training-pipeline"},
    "images": {"trainer": "ghcr.io/ml-platform/trainer:0.1.0"},
    "imagePullSecrets": [],
    "serviceAccountName": "ml-platform-pipeline",
    "sharedVolume": None,  # sharedVolume.enabled is off by default
    "endpoints": {
        "mlflowTrackingUri": "http://ml-platform-mlflow.ml-platform.svc:5000",
        "s3EndpointUrl": "http://ml-platform-minio.ml-platform.svc:9000",
        "s3Region": "us-east-1",
    },
    "objectStoreSecret": {
        "name": "ml-platform-object-store",
        "accessKeyKey": "AWS_ACCESS_KEY_ID",
        "secretKeyKey": "AWS_SECRET_ACCESS_KEY",
    },
    "mlflowAuthSecret": None,  # basic auth is on with an Ingress (mlflow.auth.enabled auto)
    "objectStoreConnectionId": "aws_default",
    "gpuTaint": {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
    "profiles": {
        "a100": {
            "nodeLabels": {"gpu-type": "a100", "node-pool": "ml-training"},
            "gpuProducts": [
                "NVIDIA-A100-SXM4-80GB",
                "NVIDIA-A100-SXM4-40GB",
                "NVIDIA-A100-80GB-PCIe",
            ],
            "gpus": 1,
            "cpu": "8",
            "memory": "32Gi",
            "priorityClassName": "ml-training-gpu",
        },
        "h100": {
            "nodeLabels": {"gpu-type": "h100", "node-pool": "ml-training"},
            "gpuProducts": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"],
            "gpus": 1,
            "cpu": "12",
            "memory": "64Gi",
            "priorityClassName": "ml-training-gpu",
        },
        "cpu": {
            "nodeLabels": {},
            "gpuProducts": [],
            "gpus": 0,
            "cpu": "1",
            "memory": "2Gi",
            "priorityClassName": None,
        },
    },
}


def test_default_values_render_the_contract_json(default_objects):
    assert platform_config(default_objects) == EXPECTED_DEFAULT


def test_config_map_has_the_one_key(default_objects):
    cm = next(
        o
        for o in default_objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "ml-platform-platform"
    )
    assert set(cm["data"]) == {"platform.json"}


def test_only_enabled_pools_become_profiles(rendered_profiles):
    config = platform_config(rendered_profiles["h100-only"])
    assert set(config["profiles"]) == {"h100", "cpu"}
    assert config["profiles"]["h100"] == {
        "nodeLabels": {"gpu-type": "h100", "node-pool": "ml-training"},
        "gpuProducts": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"],
        "gpus": 2,
        "cpu": "24",
        "memory": "128Gi",
        "priorityClassName": "ml-training-gpu",
    }


def test_cpu_only_platform_has_the_cpu_profile_alone():
    config = platform_config(render_chart({"gpuPools": {"a100": {"enabled": False}, "h100": None}}))
    assert config["profiles"] == {"cpu": EXPECTED_DEFAULT["profiles"]["cpu"]}


def test_external_s3_changes_endpoints_and_buckets_only(rendered_profiles):
    config = platform_config(rendered_profiles["external-s3-db"])
    assert config["endpoints"] == {
        "mlflowTrackingUri": "http://ml-platform-mlflow.ml-platform.svc:5000",
        "s3EndpointUrl": "https://s3.eu-west-1.amazonaws.com",
        "s3Region": "eu-west-1",
    }
    assert config["buckets"]["xcom"] == "acme-ml-xcom"
    assert config["objectStoreSecret"] == {
        **EXPECTED_DEFAULT["objectStoreSecret"],
        "name": "acme-object-store",  # objectStore.credentials.existingSecret
    }
    changed = ("endpoints", "buckets", "objectStoreSecret")
    assert {k: v for k, v in config.items() if k not in changed} == {
        k: v for k, v in EXPECTED_DEFAULT.items() if k not in changed
    }


def test_release_name_and_namespace_flow_into_names():
    volumes = [{"name": "ml-platform-config", "configMap": {"name": "prod-platform"}}]
    objects = render_chart({"airflow": {"volumes": volumes}}, name="prod", namespace="mlops")
    config = platform_config(objects, release="prod")
    assert config["endpoints"]["mlflowTrackingUri"] == "http://prod-mlflow.mlops.svc:5000"
    assert config["endpoints"]["s3EndpointUrl"] == "http://prod-minio.mlops.svc:9000"
    assert config["objectStoreSecret"]["name"] == "prod-object-store"


def test_pull_secrets_are_listed_by_name():
    config = platform_config(render_chart({"imagePullSecrets": ["ghcr"]}))
    assert config["imagePullSecrets"] == ["ghcr"]


def test_the_taint_reconciler_reads_the_same_pools(default_objects):
    sys.path.insert(0, str(REPO / "images" / "taint-reconciler" / "src"))
    from taint_reconciler.config import parse

    reconciler = parse(platform_config(default_objects))
    assert [(p.name, dict(p.node_labels)) for p in reconciler.pools] == [
        ("a100", {"gpu-type": "a100", "node-pool": "ml-training"}),
        ("h100", {"gpu-type": "h100", "node-pool": "ml-training"}),
    ]
    assert reconciler.taint.as_dict() == EXPECTED_DEFAULT["gpuTaint"]


# ------------------------------------------------------------------ the DAGs' fallback copy
DAG_DEFAULTS = REPO / "dags" / "ml_pipeline" / "platform_defaults.json"


def _dag_defaults():
    if not DAG_DEFAULTS.is_file():
        pytest.skip(f"{DAG_DEFAULTS} not present")
    return json.loads(DAG_DEFAULTS.read_text())


def test_dag_defaults_match_what_the_chart_renders(default_objects):
    """Pools, buckets, namespaces, images, taint, endpoints: the DAGs' local fallback equals the chart."""
    assert _dag_defaults() == platform_config(default_objects)
