"""DAG delivery: on kind the working tree is mounted (k8s/values/kind.yaml + the dags volume),
in production git-sync pulls the `dags/` folder (k8s/values/production.yaml). The overlays are
checked against the chart's values and the official Airflow chart's values schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from devloop_support import (
    AIRFLOW_CHART_SCHEMA,
    CHART_DIR,
    REPO,
    load_yaml,
    load_yaml_all,
    require,
)
from helm_chart import deep_merge
from kubernetes.utils import parse_quantity

OVERLAYS = ("kind", "production")
UPSTREAM_BLOCKS = {"airflow", "minio", "nvidiaDevicePlugin"}  # validated by their own charts


def overlay(name: str) -> dict[str, Any]:
    return load_yaml(REPO / "k8s" / "values" / f"{name}.yaml")


def leaf_paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(tree, dict) and tree:
        return [p for k, v in tree.items() for p in leaf_paths(v, (*prefix, k))]
    return [prefix]


@pytest.fixture(scope="module")
def airflow_schema() -> dict[str, Any]:
    return json.loads(require(AIRFLOW_CHART_SCHEMA, "shared schema").read_text())


def test_kind_dags_volume_manifests_are_valid_and_bind_to_each_other():
    docs = load_yaml_all(REPO / "k8s" / "kind" / "dags-volume.yaml")
    for doc in docs:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    pv = next(d for d in docs if d["kind"] == "PersistentVolume")
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pv["spec"]["claimRef"] == {
        "namespace": pvc["metadata"]["namespace"],
        "name": pvc["metadata"]["name"],
    }
    # An empty class on both sides: kind's default StorageClass must not provision a fresh volume.
    assert pv["spec"]["storageClassName"] == pvc["spec"]["storageClassName"] == ""
    assert set(pvc["spec"]["accessModes"]) <= set(pv["spec"]["accessModes"])
    assert parse_quantity(pv["spec"]["capacity"]["storage"]) >= parse_quantity(
        pvc["spec"]["resources"]["requests"]["storage"]
    )


def test_kind_overlay_mounts_the_working_tree_claim_instead_of_git_sync():
    dags = overlay("kind")["airflow"]["dags"]
    pvc = next(
        d
        for d in load_yaml_all(REPO / "k8s" / "kind" / "dags-volume.yaml")
        if d["kind"] == "PersistentVolumeClaim"
    )
    assert dags["gitSync"]["enabled"] is False
    assert dags["persistence"] == {"enabled": True, "existingClaim": pvc["metadata"]["name"]}


def test_production_overlay_ships_dags_by_git_sync():
    git = overlay("production")["airflow"]["dags"]["gitSync"]
    assert git["enabled"] is True
    assert overlay("production")["airflow"]["dags"]["persistence"]["enabled"] is False
    assert git["branch"] == git["ref"], "git-sync v4 reads ref, v3 branch: they must agree"
    assert git["credentialsSecret"], "production repositories are private: name the token Secret"
    dags_dir = REPO / git["subPath"]
    assert dags_dir.is_dir(), f"git-sync subPath {git['subPath']!r} is not a folder of this repo"
    assert (dags_dir / ".airflowignore").is_file(), "support code must be .airflowignore'd"


def test_production_overlay_turns_the_device_plugin_on():
    assert overlay("production")["nvidiaDevicePlugin"]["enabled"] is True
    assert overlay("kind")["nvidiaDevicePlugin"]["enabled"] is False


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_airflow_block_is_valid_for_the_official_chart(name, chart_values, airflow_schema):
    merged = deep_merge(chart_values["airflow"], overlay(name).get("airflow", {}))
    merged.pop("enabled", None)  # the umbrella chart's dependency condition, not an Airflow value
    errors = sorted(
        jsonschema.validators.validator_for(airflow_schema)(airflow_schema).iter_errors(merged),
        key=str,
    )
    assert not errors, "\n".join(
        f"airflow.{'.'.join(map(str, e.path))}: {e.message}" for e in errors
    )


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_keys_exist_in_the_chart(name, chart_values):
    for path in leaf_paths(overlay(name)):
        if path[0] in UPSTREAM_BLOCKS:
            continue
        node: Any = chart_values
        for depth, key in enumerate(path):
            assert isinstance(node, dict) and key in node, (
                f"k8s/values/{name}.yaml sets {'.'.join(path)} but charts/ml-platform/values.yaml "
                f"has no {'.'.join(path[: depth + 1])}"
            )
            node = node[key]


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_never_replaces_a_list_the_chart_fills(name, chart_values):
    """Helm replaces lists wholesale: overriding e.g. airflow.volumes would drop the platform
    ConfigMap mount the chart puts there."""

    def walk(over: Any, base: Any, path: str) -> None:
        if isinstance(over, dict) and isinstance(base, dict):
            for key, value in over.items():
                walk(value, base.get(key), f"{path}.{key}" if path else key)
        elif isinstance(over, list):
            assert not base, f"k8s/values/{name}.yaml replaces the chart's list {path}"

    walk(overlay(name), chart_values, "")


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_validates_against_the_chart_schema_when_it_has_one(name, chart_values):
    schema_path = CHART_DIR / "values.schema.json"
    if not schema_path.exists():
        pytest.fail(
            "charts/ml-platform/values.schema.json does not exist yet - the chart part; the "
            "overlay keys were checked against values.yaml only",
            pytrace=False,
        )
    schema = json.loads(schema_path.read_text())
    merged = deep_merge(chart_values, overlay(name))
    errors = sorted(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(merged), key=str
    )
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
