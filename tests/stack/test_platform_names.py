"""Bucket and model names come from the chart values; the fallback equals docs/CONTRACTS.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from devstack.paths import repo_root
from devstack.platform_names import (
    DEFAULT_BUCKETS,
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    VALUES_FILE,
    load_platform_names,
)


def _contract_names() -> dict:
    text = (repo_root() / "docs" / "CONTRACTS.md").read_text()
    section = text[text.index("## 2.") : text.index("## 3.")]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block, "docs/CONTRACTS.md section 2 has no yaml block"
    return yaml.safe_load(block.group(1))


def test_fallback_names_equal_the_contract_when_the_chart_is_absent(tmp_path: Path) -> None:
    contract = _contract_names()
    names = load_platform_names(tmp_path)  # no charts/ under tmp_path
    assert names.buckets == contract["objectStore"]["buckets"] == DEFAULT_BUCKETS
    assert names.model_name == contract["model"]["name"] == DEFAULT_MODEL_NAME
    assert names.experiment == contract["model"]["experiment"] == DEFAULT_EXPERIMENT


def test_names_are_read_from_the_chart_values_file(tmp_path: Path) -> None:
    values = tmp_path / VALUES_FILE
    values.parent.mkdir(parents=True)
    values.write_text(
        "objectStore:\n  buckets: {datasets: ds-x, mlflow: ml-x}\n"
        "model: {name: other-model, experiment: other-exp}\n"
    )
    names = load_platform_names(tmp_path)
    assert names.buckets == {"datasets": "ds-x", "mlflow": "ml-x"}
    assert (names.model_name, names.experiment) == ("other-model", "other-exp")
    assert names.source == str(values)


def test_repository_names_match_the_chart_when_it_exists() -> None:
    values_path = repo_root() / VALUES_FILE
    names = load_platform_names()
    if values_path.is_file():
        values = yaml.safe_load(values_path.read_text())
        assert names.buckets == values["objectStore"]["buckets"]
    else:
        assert names.buckets == DEFAULT_BUCKETS
