"""docs/chart.md: the install guide covers what the issue asks, and its values reference is
generated from the schema and values.yaml (regenerate: tests/chart/values_reference.py --write)."""

from __future__ import annotations

from values_reference import DOC, current_section, generate


def test_values_reference_is_up_to_date():
    section = current_section(DOC.read_text())
    assert section is not None, f"{DOC} lost its values-reference markers"
    assert section == generate(), (
        "docs/chart.md values reference is stale: run `make generate` (tests/chart/values_reference.py --write)"
    )


def test_install_guide_covers_the_essentials():
    text = DOC.read_text()
    for needle in (
        "helm dependency build charts/ml-platform",
        "helm install ml-platform charts/ml-platform",
        "helm test ml-platform",
        "externalS3:",
        "externalDatabase:",
        "gpuPools:",
        "GitDagBundle",
        "credentialsSecret",
        "Chart.lock",
        "## Install on a real cluster",
        "### Prerequisites",
        "### Images",
        "### Secrets",
        "generatedSecrets.seed",
        "--wait",
        "### Upgrade",
        "### A second release",
        "### Troubleshooting",
    ):
        assert needle in text, needle


def test_every_value_of_our_schema_is_documented():
    section = current_section(DOC.read_text())
    for key in (
        "gpuPools.<name>.gpusPerPod",
        "objectStore.buckets",
        "taintReconciler.resyncSeconds",
        "mlflow.backendStore.type",
    ):
        assert f"| `{key}` |" in section, key
