"""Generated, not compared: the files derived from charts/ml-platform/values.yaml
(`make generate-platform-defaults`, devstack/generate.py) are what the generator writes today,
and a GPU pool added to values.yaml alone reaches every part that follows the pools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from consistency_support import REPO
from devstack import cli, generate
from devstack.cluster.nodes import pool_nodes
from devstack.errors import DevstackError
from ml_pipeline.config import parse_platform_config

NEW_POOL = {
    "enabled": True,
    "nodeLabels": {"gpu-type": "l4", "node-pool": "ml-inference"},
    "gpuProducts": ["NVIDIA-L4"],
    "gpusPerPod": 1,
    "resources": {"cpu": "4", "memory": "16Gi"},
    "priorityClassName": "ml-training-gpu",
}


def test_the_generate_command_writes_then_reports_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["generate", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out
    assert f"wrote {tmp_path / generate.PLATFORM_DEFAULTS}" in written
    assert cli.main(["generate", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"generated files under {tmp_path} are up to date\n"


def test_generated_files_are_up_to_date(tmp_path: Path) -> None:
    files = generate.generated_files(REPO)
    assert {f.path for f in files} >= {
        generate.PLATFORM_DEFAULTS,
        generate.KIND_CLUSTER,
        generate.KIND_VALUES,
    }
    generate.write(files, tmp_path)
    stale = [
        str(f.path) for f in files if (REPO / f.path).read_text() != (tmp_path / f.path).read_text()
    ]
    assert not stale, f"stale generated files {stale}: run `make generate`"


@pytest.fixture(scope="module")
def repo_with_new_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what the generator reads, with one GPU pool added to values.yaml only."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / generate.CHART, root / generate.CHART)
    for path in (generate.KIND_CLUSTER, generate.KIND_VALUES):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, root / path)
    values_path = root / generate.CHART / "values.yaml"
    values = yaml.safe_load(values_path.read_text())
    values["gpuPools"]["l4"] = NEW_POOL
    values_path.write_text(yaml.safe_dump(values, sort_keys=False))
    generate.write(generate.generated_files(root), root)
    return root


def test_a_new_gpu_pool_becomes_a_dag_profile(repo_with_new_pool: Path) -> None:
    data = json.loads((repo_with_new_pool / generate.PLATFORM_DEFAULTS).read_text())
    profile = parse_platform_config(data, "platform_defaults.json").profile("l4")
    assert profile.node_labels == NEW_POOL["nodeLabels"]
    assert profile.gpus == 1 and profile.gpu_products == ("NVIDIA-L4",)


def test_a_new_gpu_pool_gets_a_tainted_kind_worker_and_laptop_resources(
    repo_with_new_pool: Path,
) -> None:
    kind = yaml.safe_load((repo_with_new_pool / generate.KIND_CLUSTER).read_text())
    (worker,) = [n for n in kind["nodes"] if (n.get("labels") or {}).get("gpu-type") == "l4"]
    assert worker["labels"]["node-pool"] == "ml-inference"
    assert worker["labels"]["nvidia.com/gpu.product"] == "NVIDIA-L4"
    (patch,) = [yaml.safe_load(p) for p in worker["kubeadmConfigPatches"]]
    taint = patch["nodeRegistration"]["kubeletExtraArgs"]["register-with-taints"]
    assert taint == "nvidia.com/gpu=present:NoSchedule"
    overlay = yaml.safe_load((repo_with_new_pool / generate.KIND_VALUES).read_text())
    assert overlay["gpuPools"]["l4"] == {"resources": {"cpu": "1", "memory": "2Gi"}}


def test_a_new_gpu_pool_gets_nodes_in_the_cluster_harness(repo_with_new_pool: Path) -> None:
    data = json.loads((repo_with_new_pool / generate.PLATFORM_DEFAULTS).read_text())
    nodes = [n for n in pool_nodes(data) if n.labels.get("gpu-type") == "l4"]
    assert nodes and all(n.gpus >= 1 for n in nodes)
    assert all(n.taints == [data["gpuTaint"]] for n in nodes)


def test_a_generated_region_without_its_markers_is_a_clear_error(tmp_path: Path) -> None:
    text = (REPO / generate.KIND_VALUES).read_text()
    broken = "\n".join(line for line in text.splitlines() if "END GENERATED" not in line)
    with pytest.raises(DevstackError, match=r"lost its .*make generate-platform-defaults"):
        generate.replace_region(broken, "gpu-pools", "", generate.KIND_VALUES)
