"""Every object name, label and container name the API server would see is valid - for every
profile, for other release names and namespaces, upstream charts included (an upper-case
`ml-platform-nvidiaDevicePlugin…` is refused by the API server, not by helm template)."""

from __future__ import annotations

import re

import pytest
from chart_render import pod_specs, render_chart, render_error
from helm_chart import PROFILES

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names must be DNS-1123 labels; Services DNS-1035 labels; the rest subdomains.
LABEL_NAMED = {"Namespace"}
# (release, namespace) combinations beside the profiles' own.
RELEASES = [
    ("platform", "mlp"),
    ("ml-platform", "default"),
    ("mlp", "ml-platform"),  # the release name does not contain "minio" or the device plugin's name
    ("team-a-ml-platform-production-eu-west-1", "team-a"),  # 40 characters, the longest allowed
]


def name_problems(objects) -> list[str]:
    problems = []
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        name, where = meta["name"], f"{obj['kind']} {meta['name']}"
        if kind == "Service":
            ok = DNS1035_LABEL.match(name) and len(name) <= 63
        elif kind in LABEL_NAMED:
            ok = DNS1123_LABEL.match(name) and len(name) <= 63
        else:
            ok = DNS1123_SUBDOMAIN.match(name) and len(name) <= 253
        if not ok:
            problems.append(f"{where}: invalid name")
        if meta.get("namespace") and not DNS1123_LABEL.match(meta["namespace"]):
            problems.append(f"{where}: invalid namespace {meta['namespace']!r}")
        for key, value in (meta.get("labels") or {}).items():
            if len(str(value)) > 63 or not LABEL_VALUE.match(str(value)):
                problems.append(f"{where}: label {key}={value!r}")
        for spec in pod_specs(obj):
            for c in [*spec.get("initContainers", []), *spec["containers"]]:
                if not (DNS1123_LABEL.match(c["name"]) and len(c["name"]) <= 63):
                    problems.append(f"{where}: container name {c['name']!r}")
                for port in c.get("ports", []):
                    if "name" in port and not (
                        len(port["name"]) <= 15 and DNS1035_LABEL.match(port["name"])
                    ):
                        problems.append(f"{where}: port name {port['name']!r}")
    return problems


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_name_of_every_profile_is_valid(rendered_profiles, profile):
    assert not name_problems(rendered_profiles[profile])


@pytest.mark.parametrize(("release", "namespace"), RELEASES)
def test_any_release_name_in_any_namespace_renders_valid_names(release, namespace):
    """`helm install platform -n mlp` and friends: only airflow.volumes names the release."""
    objects = render_chart(
        {
            "airflow": {
                "volumes": [
                    {"name": "ml-platform-config", "configMap": {"name": f"{release}-platform"}}
                ]
            }
        },
        name=release,
        namespace=namespace,
    )
    assert not name_problems(objects)
    names = {o["metadata"]["name"] for o in objects}
    assert f"{release}-nvidia-device-plugin" in names
    assert f"{release}-model-server" in names


def test_the_device_plugin_keeps_lower_case_names_and_its_own_namespace(default_objects):
    plugin = [o for o in default_objects if "nvidia-device-plugin" in o["metadata"]["name"]]
    kinds = {o["kind"] for o in plugin}
    assert kinds == {
        "Namespace",
        "DaemonSet",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    for obj in plugin:
        where = obj["metadata"]["name"]
        assert obj["metadata"].get("namespace") in (None, "nvidia-device-plugin"), where
    assert not [o for o in default_objects if "nvidiaDevicePlugin" in str(o)]


def test_upper_case_device_plugin_names_are_refused_before_the_api_server():
    error = render_error({"nvidiaDevicePlugin": {"nameOverride": ""}})
    assert "would be named ml-platform-nvidiaDevicePlugin" in error
    assert "nvidiaDevicePlugin.nameOverride=nvidia-device-plugin" in error


def test_a_release_name_too_long_for_service_names_is_refused():
    release = "a-release-name-that-is-too-long-for-services-x"  # 46 characters
    error = render_error(name=release)
    assert "too long for this chart's object names" in error and "fullnameOverride" in error
