"""Fixtures of the chart tests: `render_chart` and the values profiles (charts/ml-platform/ci)."""

from __future__ import annotations

import pytest
from chart_render import HELM, PROFILES, helm_available, render_chart, skipped_dependencies


def pytest_report_header(config):
    if not helm_available():
        return f"chart tests: helm not found at {HELM} (make tools)"
    skipped = skipped_dependencies()
    if not skipped:
        return "chart tests: every dependency of charts/ml-platform is present"
    return [
        "chart tests: rendering charts/ml-platform without these upstream dependencies "
        "(not downloaded: `helm dependency build` needs the network):",
        *(f"  - {dep}" for dep in skipped),
    ]


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
    return {name: render_chart(values_files=files) for name, files in PROFILES.items()}


@pytest.fixture(scope="session")
def default_objects(rendered_profiles):
    return rendered_profiles["default"]
