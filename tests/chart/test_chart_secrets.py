"""Secrets that stay put. With a cluster, each generated credential is created once and read
back with `lookup` on every upgrade (proven in the cluster tests). Without one (`helm template`,
a GitOps renderer) lookup sees nothing, so credentials are derived from generatedSecrets.seed:
two renders of the same release must give byte-identical Secrets, and a render without a seed
must refuse instead of inventing keys that change on every sync."""

from __future__ import annotations

import base64

import pytest
from chart_render import render_chart, render_error
from helm_chart import PROFILES, profile_release

R = "ml-platform"


def secrets(objects) -> dict[tuple[str, str], dict[str, str]]:
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): {
            k: base64.b64decode(v).decode() for k, v in (o.get("data") or {}).items()
        }
        for o in objects
        if o["kind"] == "Secret"
    }


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_two_renders_of_the_same_release_give_the_same_secrets(rendered_profiles, profile):
    release, namespace = profile_release(profile)
    again = render_chart(values_files=PROFILES[profile], name=release, namespace=namespace)
    assert secrets(again) == secrets(rendered_profiles[profile])


def test_every_generated_credential_depends_on_the_seed(default_objects):
    other = secrets(render_chart(seed="another-seed"))
    first = secrets(default_objects)
    generated = {
        (f"{R}-object-store", "AWS_SECRET_ACCESS_KEY"),
        (f"{R}-minio-root", "rootPassword"),
        (f"{R}-postgresql", "password"),
        (f"{R}-airflow-fernet-key", "fernet-key"),
        (f"{R}-airflow-api-secret-key", "api-secret-key"),
        (f"{R}-airflow-jwt-secret", "jwt-secret"),
    }
    for name, key in generated:
        assert first[(R, name)][key] != other[(R, name)][key], f"{name}/{key} ignores the seed"


def test_generated_credentials_are_distinct_and_long(default_objects):
    data = secrets(default_objects)
    values = [
        data[(R, f"{R}-object-store")]["AWS_SECRET_ACCESS_KEY"],
        data[(R, f"{R}-minio-root")]["rootPassword"],
        data[(R, f"{R}-postgresql")]["password"],
        data[(R, f"{R}-airflow-api-secret-key")]["api-secret-key"],
        data[(R, f"{R}-airflow-jwt-secret")]["jwt-secret"],
    ]
    assert len(set(values)) == len(values)
    assert min(len(v) for v in values) >= 32


def test_the_fernet_key_is_a_valid_fernet_key(default_objects):
    from cryptography.fernet import Fernet

    key = secrets(default_objects)[(R, f"{R}-airflow-fernet-key")]["fernet-key"]
    assert (
        Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"connection")) == b"connection"
    )


def test_database_uris_keep_matching_the_generated_password(default_objects):
    data = secrets(default_objects)
    password = data[(R, f"{R}-postgresql")]["password"]
    assert f":{password}@" in data[(R, f"{R}-airflow-metadata")]["connection"]
    assert f":{password}@" in data[(R, f"{R}-mlflow-backend-store")]["MLFLOW_BACKEND_STORE_URI"]


def test_rendering_without_a_cluster_or_a_seed_is_refused_with_the_fix():
    error = render_error(seed=None)
    assert "no cluster to read Secret" in error
    assert "generatedSecrets.seed" in error and "openssl rand -hex 32" in error


def test_provided_secrets_need_no_seed():
    """Everything from Secrets you created (existingSecret / create: false) renders without one."""
    objects = render_chart(
        {
            "objectStore": {
                "credentials": {"existingSecret": "mine-object-store"},
                "minioRootSecret": {"create": False},
            },
            "minio": {
                "users": [
                    {
                        "accessKey": "ml-platform",
                        "existingSecret": "mine-object-store",
                        "existingSecretKey": "AWS_SECRET_ACCESS_KEY",
                        "policy": "ml-platform-buckets",
                    }
                ]
            },
            "mlflow": {"artifacts": {"credentialsSecret": "mine-object-store"}},
            "airflow": {
                "extraEnvFrom": "- configMapRef:\n    name: '{{ .Release.Name }}-airflow-env'\n"
                "- secretRef:\n    name: mine-object-store\n"
            },
            "postgresql": {"enabled": False},
            "externalDatabase": {"enabled": True, "host": "db.example.com"},
            "database": {"createSecrets": False},
            "airflowIntegration": {"createSecrets": False},
        },
        seed=None,
    )
    assert not [o for o in objects if o["kind"] == "Secret"]


def test_explicit_values_win_over_generation():
    data = secrets(
        render_chart(
            {
                "postgresql": {"password": "chosen-password"},
                "objectStore": {"credentials": {"secretAccessKey": "chosen-secret-key"}},
            }
        )
    )
    assert data[(R, f"{R}-postgresql")]["password"] == "chosen-password"
    assert ":chosen-password@" in data[(R, f"{R}-airflow-metadata")]["connection"]
    assert data[(R, f"{R}-object-store")]["AWS_SECRET_ACCESS_KEY"] == "chosen-secret-key"
