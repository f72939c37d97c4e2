"""Fixtures of the chart tests: `render_chart` and the values profiles (charts/ml-platform/ci)."""

from __future__ import annotations

import pytest
from chart_render import HELM, helm_available, prepared_chart, render_chart
from helm_chart import PROFILES, MissingChartPackage, profile_release


def pytest_report_header(config):
    if not helm_available():
        return f"chart tests: helm not found at {HELM} (make tools)"
    try:
        prepared = prepared_chart()
    except MissingChartPackage as exc:
        return f"chart tests: cannot prepare charts/ml-platform: {exc}"
    lines = ["chart tests: charts/ml-platform rendered with these dependencies:"]
    lines += [f"  + {dep}" for dep in prepared.included]
    lines += [f"  - {name} NOT rendered: {why}" for name, why in prepared.omitted.items()]
    return lines


def pytest_collection_modifyitems(config, items):
    if helm_available():
        return
    skip = pytest.mark.skip(reason=f"helm not found at {HELM}; `make tools` builds it")
    for item in items:
        if "tests/chart/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def rendered_profiles():
    """Every profile rendered once per session: {profile: [objects]}."""
    rendered = {}
    for name, files in PROFILES.items():
        release, namespace = profile_release(name)
        rendered[name] = render_chart(values_files=files, name=release, namespace=namespace)
    return rendered


@pytest.fixture(scope="session")
def default_objects(rendered_profiles):
    return rendered_profiles["default"]
