"""The `airflow:` block is passed to the official Apache Airflow chart as it is: validate it,
merged the way Helm merges it for each profile, against that chart's own values schema.

The official chart's package cannot be downloaded on this project's machines, so its objects
are not rendered (tests/helm_chart.py leaves it out and the pytest header says so); its
published values schema is the check instead. It is read from the shared folder next to the
repository (never copied here): shared/schemas/airflow-chart/values.schema.json (see its
SOURCE.md), or the file $ML_PLATFORM_AIRFLOW_SCHEMA names."""

from __future__ import annotations

import json

import jsonschema
import pytest
from chart_render import AIRFLOW_SCHEMA, AIRFLOW_SCHEMA_ENV, computed_values
from helm_chart import PROFILES, profile_release


@pytest.fixture(scope="module")
def airflow_validator():
    if not AIRFLOW_SCHEMA.is_file():
        pytest.fail(
            f"the official Airflow chart's values schema is missing: {AIRFLOW_SCHEMA}. Put the "
            "chart's values.schema.json (airflow chart 1.22.0) in shared/schemas/airflow-chart/ "
            f"next to the repository, or set {AIRFLOW_SCHEMA_ENV} to its path."
        )
    schema = json.loads(AIRFLOW_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def airflow_blocks():
    blocks = {}
    for profile, files in PROFILES.items():
        release, namespace = profile_release(profile)
        values = computed_values(values_files=files, name=release, namespace=namespace)
        blocks[profile] = values["airflow"]
    return blocks


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_airflow_block_is_valid_for_the_official_chart(airflow_validator, airflow_blocks, profile):
    block = dict(airflow_blocks[profile])
    block.pop("enabled")  # the dependency condition, read by Helm, not by the chart
    errors = sorted(airflow_validator.iter_errors(block), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"airflow.{'.'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def test_validation_catches_a_typo(airflow_validator):
    errors = list(airflow_validator.iter_errors({"dags": {"gitSync": {"branches": "main"}}}))
    assert errors, "the official schema should refuse unknown gitSync keys"


def test_airflow_runs_the_project_image_with_kubernetes_executor(airflow_blocks):
    block = airflow_blocks["default"]
    assert block["executor"] == "KubernetesExecutor"
    assert block["airflowVersion"] == block["defaultAirflowTag"] == "3.3.2"
    assert block["images"]["airflow"] == {
        "repository": "ghcr.io/ml-platform/airflow",
        "tag": "0.1.0",
        "pullPolicy": "IfNotPresent",
    }
    assert block["postgresql"] == {"enabled": False}  # no Bitnami image
    assert block["redis"] == {"enabled": False}


def test_dags_come_from_git_sync_by_default(airflow_blocks):
    git_sync = airflow_blocks["default"]["dags"]["gitSync"]
    assert git_sync["enabled"] is True
    assert git_sync["subPath"] == "dags"
    assert git_sync["branch"] == "main"
    assert "credentialsSecret" in git_sync


def test_git_dag_bundle_profile_replaces_git_sync(airflow_blocks):
    block = airflow_blocks["git-dag-bundle"]
    assert block["dags"]["gitSync"]["enabled"] is False
    (bundle,) = block["dagProcessor"]["dagBundleConfigList"]
    assert bundle["classpath"] == "airflow.providers.git.bundles.git.GitDagBundle"
    assert bundle["kwargs"]["subdir"] == "dags"
    assert {
        "envName": "AIRFLOW_CONN_ML_PLATFORM_GIT",
        "secretName": "ml-platform-git-connection",
        "secretKey": "connection",
    } in block["secret"]


def test_platform_config_is_mounted_where_the_dags_read_it(airflow_blocks):
    block = airflow_blocks["default"]
    assert {
        "name": "ml-platform-config",
        "configMap": {"name": "ml-platform-platform"},
    } in block["volumes"]
    assert {
        "name": "ml-platform-config",
        "mountPath": "/opt/airflow/platform",
        "readOnly": True,
    } in block["volumeMounts"]
    assert "{{ .Release.Name }}-airflow-env" in block["extraEnvFrom"]
    assert "{{ .Release.Name }}-object-store" in block["extraEnvFrom"]


def test_migration_and_user_jobs_do_not_deadlock_helm_wait(airflow_blocks):
    """As post-install hooks they would start only after --wait saw every pod ready, while every
    Airflow pod waits for the migrations: plain Jobs (the official chart's GitOps settings)."""
    for profile, block in airflow_blocks.items():
        for job in ("migrateDatabaseJob", "createUserJob"):
            assert block[job]["useHelmHooks"] is False, f"{profile}: airflow.{job}.useHelmHooks"
            assert block[job]["applyCustomEnv"] is False, f"{profile}: airflow.{job}.applyCustomEnv"


def test_airflow_keys_come_from_secrets_this_chart_keeps_stable(airflow_blocks):
    """Named Secrets, so the official chart never renders fresh fernet/API/JWT keys."""
    block = airflow_blocks["default"]
    assert block["fernetKeySecretName"] == "ml-platform-airflow-fernet-key"
    assert block["apiSecretKeySecretName"] == "ml-platform-airflow-api-secret-key"
    assert block["jwtSecretName"] == "ml-platform-airflow-jwt-secret"
    second = airflow_blocks["second-release"]
    assert second["fernetKeySecretName"] == "platform-airflow-fernet-key"
