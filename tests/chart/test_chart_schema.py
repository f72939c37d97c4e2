"""values.schema.json: strict (descriptions everywhere, no unknown keys in our blocks) and helm
refuses bad values with a message that names the value."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from chart_render import CHART, render_error

SCHEMAS = {
    "ml-platform": CHART / "values.schema.json",
    "mlflow": CHART / "charts" / "mlflow" / "values.schema.json",
}
# Blocks handed to upstream charts: validated by those charts (and airflow by a test here).
PASS_THROUGH = {"airflow", "minio", "nvidiaDevicePlugin", "mlflow", "global"}


def walk(schema, path="$"):
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{key}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from walk(extra, f"{path}.*")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")


@pytest.mark.parametrize("chart", sorted(SCHEMAS))
def test_schema_is_valid_draft7(chart):
    jsonschema.Draft7Validator.check_schema(json.loads(SCHEMAS[chart].read_text()))


@pytest.mark.parametrize("chart", sorted(SCHEMAS))
def test_every_property_has_a_description(chart):
    schema = json.loads(SCHEMAS[chart].read_text())
    missing = [
        path
        for path, sub in walk(schema)
        if path != "$"
        and "description" not in sub
        and "type" in sub
        and not path.endswith("[]")
        and not path.endswith(".*")
    ]
    assert not missing, missing


@pytest.mark.parametrize("chart", sorted(SCHEMAS))
def test_every_object_we_own_refuses_unknown_keys(chart):
    schema = json.loads(SCHEMAS[chart].read_text())
    loose = []
    for path, sub in walk(schema):
        top = path.split(".")[1] if path.count(".") else ""
        if top in PASS_THROUGH or sub.get("type") != "object" or "properties" not in sub:
            continue
        if sub.get("additionalProperties") is not False:
            loose.append(path)
    assert not loose, f"objects without additionalProperties: false: {loose}"


@pytest.mark.parametrize("chart", sorted(SCHEMAS))
def test_default_values_validate(chart):
    values = yaml.safe_load((SCHEMAS[chart].parent / "values.yaml").read_text())
    errors = [
        e.message
        for e in jsonschema.Draft7Validator(json.loads(SCHEMAS[chart].read_text())).iter_errors(
            values
        )
    ]
    assert not errors


def test_contract_keys_keep_their_shape():
    """docs/CONTRACTS.md section 2: these keys and shapes are read by other parts of the project."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["namespaces"] == {"training": "ml-training", "serving": "ml-serving"}
    assert values["objectStore"]["buckets"] == {
        "datasets": "datasets", "processed": "processed", "mlflow": "mlflow", "xcom": "xcom", "logs": "logs",
    }  # fmt: skip
    assert values["model"] == {"name": "digits-classifier", "experiment": "ml-training-pipeline"}
    assert values["images"]["trainer"] == {
        "repository": "ghcr.io/ml-platform/trainer",
        "tag": "0.1.0",
    }
    shared = values["sharedVolume"]
    assert (shared["claimName"], shared["mountPath"], shared["enabled"]) == (
        "ml-shared-pvc",
        "/shared",
        False,
    )
    assert values["gpuTaint"] == {
        "key": "nvidia.com/gpu",
        "value": "present",
        "effect": "NoSchedule",
    }
    assert {"a100", "h100"} <= set(values["gpuPools"])
    for pool in values["gpuPools"].values():
        assert set(pool) == {
            "enabled",
            "nodeLabels",
            "gpuProducts",
            "gpusPerPod",
            "resources",
            "priorityClassName",
        }
    assert values["cpuProfile"] == {"nodeLabels": {}, "resources": {"cpu": "1", "memory": "2Gi"}}
    assert values["airflow"]["images"]["airflow"]["repository"] == "ghcr.io/ml-platform/airflow"


# ------------------------------------------------------------------ helm refuses, readably
def _complete_pool(node_labels: dict[str, str]) -> dict[str, object]:
    """A gpuPools entry with every required field, selecting `node_labels`."""
    resources = {"cpu": "4", "memory": "16Gi"}
    return {"enabled": True, "nodeLabels": node_labels, "gpusPerPod": 1, "resources": resources}


BAD_VALUES = [
    pytest.param(
        {"gpuPool": {}}, "additional properties 'gpuPool' not allowed", id="typo-at-top-level"
    ),
    pytest.param(
        {"objectStore": {"bucket": {}}},
        "additional properties 'bucket' not allowed",
        id="typo-in-block",
    ),
    pytest.param(
        {"gpuPools": {"a100": {"gpusPerPod": 0}}}, "/gpuPools/a100/gpusPerPod", id="zero-gpus"
    ),
    pytest.param(
        {"gpuPools": {"a100": {"resources": {"memory": "32GB"}}}},
        "/gpuPools/a100/resources/memory",
        id="bad-memory-quantity",
    ),
    pytest.param(
        {"gpuPools": {"a100": {"resources": {"cpu": 8}}}},
        "/gpuPools/a100/resources/cpu",
        id="cpu-not-a-string",
    ),
    pytest.param(
        {"gpuPools": {"cpu": _complete_pool({"gpu-type": "x"})}},
        "invalid propertyName 'cpu'",
        id="pool-named-cpu",
    ),
    pytest.param(
        {"gpuPools": {"unlisted": _complete_pool({"pool": "unlisted"})}},
        "gpu-type",
        id="pool-without-gpu-type",
    ),
    pytest.param(
        {"gpuPools": {"unlisted": {"enabled": True, "nodeLabels": {"gpu-type": "unlisted"}}}},
        "missing propert",
        id="pool-missing-fields",
    ),
    pytest.param({"gpuTaint": {"effect": "NoEntry"}}, "/gpuTaint/effect", id="bad-taint-effect"),
    pytest.param(
        {"objectStore": {"buckets": {"logs": "Logs_Bucket"}}},
        "/objectStore/buckets/logs",
        id="bad-bucket-name",
    ),
    pytest.param(
        {"images": {"trainer": {"tag": "latest"}}}, "/images/trainer/tag", id="latest-tag"
    ),
    pytest.param(
        {"namespaces": {"training": "ML_Training"}}, "/namespaces/training", id="bad-namespace"
    ),
    pytest.param(
        {"externalDatabase": {"sslmode": "sometimes"}},
        "/externalDatabase/sslmode",
        id="bad-sslmode",
    ),
    pytest.param(
        {"mlflow": {"backendStore": {"type": "mysql"}}}, "/backendStore/type", id="subchart-schema"
    ),
    pytest.param(
        {"mlflow": {"replicas": 2}},
        "additional properties 'replicas' not allowed",
        id="subchart-typo",
    ),
    pytest.param(
        {"sharedVolume": {"enabled": True, "accessModes": ["ReadWriteOnce"]}},
        "/sharedVolume/accessModes",  # parallel trials on several nodes need ReadWriteMany
        id="shared-volume-without-read-write-many",
    ),
    pytest.param(
        {"externalS3": {"auth": "iam"}}, "/externalS3/auth", id="unknown-object-store-auth"
    ),
    pytest.param(
        {"mlflow": {"auth": {"enabled": "yes"}}}, "/auth/enabled", id="mlflow-auth-not-auto-or-bool"
    ),
    pytest.param(
        {"namespacePodSecurity": {"training": "strict"}},
        "/namespacePodSecurity/training",
        id="unknown-pod-security-level",
    ),
    pytest.param(
        {"fullnameOverride": "a-name-that-is-far-too-long-for-the-services-of-this"},
        "/fullnameOverride",
        id="fullname-override-too-long",
    ),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES)
def test_helm_refuses_bad_values_naming_the_value(values, message):
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error
