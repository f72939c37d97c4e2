"""skaffold.yaml: valid v4beta14 config in every profile, images reach the chart only through
setValueTemplates, profiles patch only what differs, port-forwards name real services."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from devloop_support import (
    CHART_DIR,
    DOCKERFILES,
    REPO,
    apply_json_patch,
    load_yaml_all,
    require,
)

PROFILES = ("kind", "gpu", "gke")
RELEASE = "ml-platform"  # docs/CONTRACTS.md: object names derive from the release name


def sanitize(image: str) -> str:
    """Skaffold's template-variable suffix for an artifact name (/, -, ., : become _)."""
    return re.sub(r"[/\-.:]", "_", image)


def profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [p for p in config.get("profiles", []) if p["name"] == name]
    assert len(matches) == 1, f"skaffold.yaml must define exactly one profile {name!r}"
    return matches[0]


def with_profile(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The config skaffold runs with `-p name`: the base with the profile's patches applied."""
    base = {k: v for k, v in config.items() if k != "profiles"}
    return apply_json_patch(base, profile(config, name).get("patches", []))


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_base_config_is_valid_against_the_v4beta14_schema(skaffold_config, skaffold_schema):
    assert skaffold_config["apiVersion"] == "skaffold/v4beta14"
    errors = sorted(validator(skaffold_schema).iter_errors(skaffold_config), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_catches_a_misspelt_key(skaffold_config, skaffold_schema):
    broken = dict(skaffold_config, build=dict(skaffold_config["build"], artifact=[]))
    assert list(validator(skaffold_schema).iter_errors(broken)), "schema accepted a typo"


@pytest.mark.parametrize("name", PROFILES)
def test_each_profile_applies_and_stays_valid(skaffold_config, skaffold_schema, name):
    effective = with_profile(skaffold_config, name)
    errors = list(validator(skaffold_schema).iter_errors(effective))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_patch_instead_of_restating_sections(skaffold_config, name):
    prof = profile(skaffold_config, name)
    assert set(prof) <= {"name", "activation", "patches"}, (
        f"profile {name!r} overrides whole sections {set(prof) - {'name', 'activation', 'patches'}}; "
        "patch only what differs"
    )
    assert prof["patches"], f"profile {name!r} changes nothing"


def test_artifacts_build_the_project_dockerfiles(skaffold_config):
    artifacts = {a["image"]: a for a in skaffold_config["build"]["artifacts"]}
    assert {"ghcr.io/ml-platform/trainer", "ghcr.io/ml-platform/airflow"} <= set(artifacts)
    for image, art in artifacts.items():
        name = image.rsplit("/", 1)[1]
        context = REPO / art["context"]
        dockerfile = context / art["docker"].get("dockerfile", "Dockerfile")
        assert dockerfile == REPO / "images" / name / "Dockerfile", image
        assert dockerfile.is_file(), f"{image}: {dockerfile.relative_to(REPO)} is missing"
        if name in DOCKERFILES:
            # trainer and airflow install from uv.lock, which lives at the root.
            assert art["context"] == ".", f"{image}: the lock is at the root; context must be '.'"
        ignores = [dockerfile.with_name("Dockerfile.dockerignore"), context / ".dockerignore"]
        assert any(p.is_file() for p in ignores), (
            f"{image}: no .dockerignore keeps .venv/.tools out of its build context"
        )
    assert skaffold_config["build"]["local"]["useBuildkit"] is True, (
        "only BuildKit reads the per-Dockerfile .dockerignore; without it the context is the whole repo"
    )


def test_tags_are_never_bare_numbers(skaffold_config):
    prefix = skaffold_config["build"]["tagPolicy"]["gitCommit"]["prefix"]
    assert prefix and not prefix[0].isdigit()


def dockerfile_targets(name: str) -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILES[name].read_text(), re.M | re.I))


def test_trainer_targets_cuda_by_default_and_cpu_on_kind(skaffold_config):
    base = skaffold_config["build"]["artifacts"][0]
    assert base["image"] == "ghcr.io/ml-platform/trainer"
    assert base["docker"]["target"] == "cuda"
    kind = with_profile(skaffold_config, "kind")["build"]["artifacts"][0]
    assert kind["docker"]["target"] == "cpu"
    assert {"cuda", "cpu"} <= dockerfile_targets("trainer")
    last_stage = re.findall(
        r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", DOCKERFILES["trainer"].read_text(), re.M
    )[-1]
    assert last_stage == "cuda", "a plain `docker build` (no --target) must give the CUDA image"


def test_kind_loads_images_locally_and_gpu_pushes(skaffold_config):
    assert with_profile(skaffold_config, "kind")["build"]["local"]["push"] is False
    assert with_profile(skaffold_config, "gpu")["build"]["local"]["push"] is True
    kind = profile(skaffold_config, "kind")
    assert {"kubeContext": "kind-ml-platform"} in kind["activation"]


def test_images_reach_the_chart_only_through_set_value_templates(skaffold_config, chart_values):
    release = skaffold_config["deploy"]["helm"]["releases"][0]
    templates = release["setValueTemplates"]
    for art in skaffold_config["build"]["artifacts"]:
        var = sanitize(art["image"])
        repo_keys = [k for k, v in templates.items() if v == f"{{{{.IMAGE_REPO_{var}}}}}"]
        assert len(repo_keys) == 1, f"{art['image']}: expected one key set to IMAGE_REPO_{var}"
        prefix = repo_keys[0].removesuffix(".repository")
        assert templates[f"{prefix}.tag"] == f"{{{{.IMAGE_TAG_{var}}}}}@{{{{.IMAGE_DIGEST_{var}}}}}"
        # The key must be where the chart defines that image, with that repository.
        node: Any = chart_values
        for part in prefix.split("."):
            assert isinstance(node, dict) and part in node, (
                f"setValueTemplates key {prefix!r} is not in charts/ml-platform/values.yaml"
            )
            node = node[part]
        assert node["repository"] == art["image"], (
            f"chart {prefix}.repository={node['repository']!r} but skaffold builds {art['image']!r}"
        )


def test_deploy_waits_until_the_chart_is_ready(skaffold_config):
    """Every pod of the chart becomes ready on a fresh cluster (the model server before any
    champion exists), so skaffold's status check gates the deploy instead of being off."""
    assert skaffold_config["deploy"]["statusCheck"] is True


def test_release_deploys_the_umbrella_chart(skaffold_config):
    release = skaffold_config["deploy"]["helm"]["releases"][0]
    assert release["name"] == RELEASE
    assert REPO / release["chartPath"] == CHART_DIR
    require(CHART_DIR / "Chart.yaml", "the chart part (charts/ml-platform)")


@pytest.mark.parametrize("name", PROFILES)
def test_values_files_of_every_profile_exist(skaffold_config, name):
    release = with_profile(skaffold_config, name)["deploy"]["helm"]["releases"][0]
    for path in release.get("valuesFiles", []):
        assert (REPO / path).is_file(), f"profile {name!r} names missing values file {path}"


def test_gke_profile_turns_the_chart_device_plugin_off(skaffold_config):
    release = with_profile(skaffold_config, "gke")["deploy"]["helm"]["releases"][0]
    assert release["setValues"] == {"nvidiaDevicePlugin.enabled": "false"}
    assert {"kubeContext": "gke_.*"} in profile(skaffold_config, "gke")["activation"]


def test_gpu_profile_syncs_dags_from_a_branch(skaffold_config):
    templates = with_profile(skaffold_config, "gpu")["deploy"]["helm"]["releases"][0][
        "setValueTemplates"
    ]
    assert templates["airflow.dags.gitSync.branch"] == templates["airflow.dags.gitSync.ref"]
    assert ".DAGS_GIT_BRANCH" in templates["airflow.dags.gitSync.branch"]


def forwards(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {pf["resourceName"]: pf for pf in config["portForward"]}


def test_port_forwards_cover_airflow_mlflow_and_the_minio_console(skaffold_config, chart_values):
    release = skaffold_config["deploy"]["helm"]["releases"][0]
    fwd = forwards(skaffold_config)
    # The official Airflow chart names services <release>-<component>; API server port 8080.
    api = fwd[f"{RELEASE}-api-server"]
    assert api["port"] == chart_values["airflow"].get("ports", {}).get("apiServer", 8080)
    # MinIO community chart: <release>-minio-console, consoleService.port (default 9001).
    console = fwd[f"{RELEASE}-minio-console"]
    assert console["port"] == chart_values["minio"].get("consoleService", {}).get("port", 9001)
    for pf in fwd.values():
        assert pf["resourceType"] == "service"
        assert pf["namespace"] == release["namespace"]


def test_mlflow_forward_matches_the_platform_endpoint(skaffold_config):
    defaults = require(
        REPO / "dags" / "ml_pipeline" / "platform_defaults.json", "the DAG part (dags/ml_pipeline)"
    )
    import json

    uri = json.loads(defaults.read_text())["endpoints"]["mlflowTrackingUri"]
    # <service>[.<namespace>.svc[.cluster.local]]:<port>
    m = re.fullmatch(
        r"http://([a-z0-9-]+)(?:\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?)?:(\d+)/?", uri
    )
    assert m, f"unexpected mlflowTrackingUri {uri!r}"
    service, namespace, port = m.groups()
    pf = forwards(skaffold_config)[service]
    assert pf["port"] == int(port)
    if namespace is not None:
        assert pf["namespace"] == namespace


def test_release_namespace_is_where_kind_puts_the_dags_claim(skaffold_config):
    release = skaffold_config["deploy"]["helm"]["releases"][0]
    docs = load_yaml_all(REPO / "k8s" / "kind" / "dags-volume.yaml")
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["metadata"]["namespace"] == release["namespace"]
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["name"] == release["namespace"]
