"""Every image reference resolves to one definition.

The chart's values.yaml defines each image once (`repository` + `tag`). The project's own
images (the registry of `images.trainer`) are each built from images/<name>/Dockerfile by a
skaffold artifact of the same name, which passes the built reference back into exactly that
values key; Chart.yaml's artifacthub annotation repeats the same reference (the DAGs' platform
defaults are generated from the values); the Airflow base image, the chart's Airflow version
and the lock agree."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml
from consistency_support import REPO, load_yaml

SKAFFOLD = REPO / "skaffold.yaml"


def image_definitions(values: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """repository -> [(values path, tag)] for every {repository, tag} map of the values."""
    found: dict[str, list[tuple[str, str]]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("repository"), str) and "tag" in node:
                found.setdefault(node["repository"], []).append((path, str(node["tag"])))
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else key)

    walk(values, "")
    return found


@pytest.fixture(scope="module")
def definitions(values) -> dict[str, list[tuple[str, str]]]:
    return image_definitions(values)


@pytest.fixture(scope="module")
def project_registry(values) -> str:
    return values["images"]["trainer"]["repository"].rsplit("/", 1)[0]


@pytest.fixture(scope="module")
def project_images(definitions, project_registry) -> dict[str, tuple[str, str]]:
    """repository -> (values path, tag) of the images this repository builds."""
    return {
        repo: defs[0]
        for repo, defs in definitions.items()
        if repo.startswith(project_registry + "/")
    }


@pytest.fixture(scope="module")
def skaffold() -> dict[str, Any]:
    return load_yaml(SKAFFOLD, "the dev-loop part")


def test_each_image_repository_is_defined_once_in_the_chart(definitions):
    duplicated = {repo: defs for repo, defs in definitions.items() if len(defs) > 1}
    assert not duplicated, f"defined more than once (tags can drift): {duplicated}"


def test_contract_images_are_where_contracts_md_says(project_images, project_registry):
    assert project_registry == "ghcr.io/ml-platform"
    assert project_images["ghcr.io/ml-platform/trainer"][0] == "images.trainer"
    assert project_images["ghcr.io/ml-platform/airflow"][0] == "airflow.images.airflow"


def test_every_project_image_has_a_dockerfile_and_a_skaffold_artifact(project_images, skaffold):
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    problems = []
    for repo, (path, _tag) in sorted(project_images.items()):
        name = repo.rsplit("/", 1)[1]
        dockerfile = REPO / "images" / name / "Dockerfile"
        if not dockerfile.is_file():
            problems.append(f"{repo} ({path}): no images/{name}/Dockerfile builds it")
        if repo not in artifacts:
            problems.append(f"{repo} ({path}): no skaffold artifact builds it")
        else:
            art = artifacts[repo]
            built_from = REPO / art["context"] / art["docker"].get("dockerfile", "Dockerfile")
            if built_from != dockerfile:
                problems.append(f"{repo}: skaffold builds it from {built_from.relative_to(REPO)}")
    assert not problems, "\n".join(problems)


def test_every_skaffold_artifact_is_an_image_the_chart_deploys(project_images, skaffold):
    for artifact in skaffold["build"]["artifacts"]:
        assert artifact["image"] in project_images, (
            f"skaffold builds {artifact['image']}, which charts/ml-platform/values.yaml never uses"
        )


def test_skaffold_overrides_exactly_the_defining_values_keys(project_images, skaffold):
    templates = skaffold["deploy"]["helm"]["releases"][0]["setValueTemplates"]
    for artifact in skaffold["build"]["artifacts"]:
        path, _ = project_images[artifact["image"]]
        var = re.sub(r"[/\-.:]", "_", artifact["image"])
        assert templates.get(f"{path}.repository") == f"{{{{.IMAGE_REPO_{var}}}}}"
        assert f"{{{{.IMAGE_TAG_{var}}}}}" in templates.get(f"{path}.tag", "")


def test_project_image_tags_are_the_chart_app_version(project_images, chart_yaml):
    for path, tag in project_images.values():
        assert tag == chart_yaml["appVersion"], (
            f"{path}.tag={tag} but appVersion={chart_yaml['appVersion']}"
        )


def test_chart_image_annotation_repeats_the_values(definitions, chart_yaml):
    listed = yaml.safe_load(chart_yaml.get("annotations", {}).get("artifacthub.io/images", "[]"))
    for entry in listed:
        repo, tag = entry["image"].rsplit(":", 1)
        if repo in definitions:
            assert [t for _, t in definitions[repo]] == [tag], (
                f"Chart.yaml annotation says {entry['image']}, values.yaml says {definitions[repo]}"
            )


def test_airflow_versions_agree_across_chart_dockerfile_and_lock(values):
    dockerfile = (REPO / "images" / "airflow" / "Dockerfile").read_text()
    base = re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:(\d+\.\d+\.\d+)-python", dockerfile, re.M)
    assert base, "images/airflow/Dockerfile does not pin apache/airflow:<version>-python<X.Y>"
    version = base.group(1)
    airflow = values["airflow"]
    assert airflow["airflowVersion"] == version
    assert airflow.get("defaultAirflowTag", version) == version
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"apache-airflow=={version}" in deps
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    assert locked["apache-airflow"] == version


def test_project_images_share_one_python_base():
    bases = {}
    for dockerfile in sorted((REPO / "images").glob("*/Dockerfile")):
        text = dockerfile.read_text()
        args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
        for image in re.findall(r"^FROM\s+(\S+)", text, re.M):
            image = re.sub(r"\$\{(\w+)\}", lambda m, a=args: a.get(m.group(1), m.group(0)), image)
            if image.startswith("python:"):
                bases[dockerfile.parent.name] = image
    assert len(set(bases.values())) <= 1, f"two Python base images drift apart: {bases}"
