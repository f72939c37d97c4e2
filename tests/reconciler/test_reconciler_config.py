"""The reconciler reads the same platform config as the DAGs (docs/CONTRACTS.md section 3)."""

from __future__ import annotations

import json

import pytest
from taint_reconciler.config import ConfigError, load, parse
from taint_reconciler.logic import Pool, Taint

PLATFORM = {
    "gpuTaint": {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
    "profiles": {
        "a100": {"nodeLabels": {"gpu-type": "a100"}, "gpus": 1},
        "h100": {"nodeLabels": {"gpu-type": "h100"}, "gpus": 2},
        "cpu": {"nodeLabels": {}, "gpus": 0},
    },
}


def test_gpu_profiles_become_pools_and_cpu_does_not():
    config = parse(PLATFORM)
    assert config.taint == Taint("nvidia.com/gpu", "present", "NoSchedule")
    assert config.pools == (Pool("a100", {"gpu-type": "a100"}), Pool("h100", {"gpu-type": "h100"}))


def test_cpu_only_platform_has_no_pools():
    config = parse({**PLATFORM, "profiles": {"cpu": PLATFORM["profiles"]["cpu"]}})
    assert config.pools == ()


def test_gpu_profile_without_labels_is_refused():
    data = {**PLATFORM, "profiles": {"x": {"nodeLabels": {}, "gpus": 1}}}
    with pytest.raises(ConfigError, match="'x' has no nodeLabels; it would match every node"):
        parse(data)


def test_missing_taint_is_refused():
    with pytest.raises(ConfigError, match="expected gpuTaint and profiles"):
        parse({"profiles": {}})


def test_empty_taint_key_with_gpu_pools_is_refused():
    data = {**PLATFORM, "gpuTaint": {"key": "", "value": "", "effect": "NoSchedule"}}
    with pytest.raises(ConfigError, match="gpuTaint needs a key and an effect"):
        parse(data)


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(PLATFORM))
    assert [p.name for p in load(path).pools] == ["a100", "h100"]


def test_load_names_the_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the platform config"):
        load(tmp_path / "absent.json")


def test_load_names_a_broken_file(tmp_path):
    path = tmp_path / "platform.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not JSON"):
        load(path)
