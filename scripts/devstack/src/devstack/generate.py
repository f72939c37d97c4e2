"""Files generated from the chart's values (`make generate-platform-defaults`, `devstack generate`).

`charts/ml-platform/values.yaml` defines every shared name once. helm renders it, and the rest
of the repository reads the rendering instead of keeping copies:

- `dags/ml_pipeline/platform_defaults.json`: the chart's platform ConfigMap (`platform.json`,
  docs/CONTRACTS.md section 3) as `helm template ml-platform … --namespace ml-platform`
  renders it from the default values. The DAGs fall back to it outside a cluster; the local
  stack (`devstack.platform_names`) and the cluster harness (`devstack.cluster.nodes`) read it.
- `k8s/kind/cluster.yaml`, between its GENERATED markers: one GPU-like worker per GPU profile
  of that file (the pool's node labels, its first GPU product, the GPU taint), built like the
  hand-written CPU worker above the markers (same node image and mounts).
- `k8s/values/kind.yaml`, between its GENERATED markers: every GPU pool requests the `cpu`
  profile's CPU and memory on kind (the "GPU" pods run the CPU trainer on a laptop).

`tests/consistency/test_generated_files.py` regenerates into a temp folder and fails when a
committed file differs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.errors import DevstackError, ToolMissingError
from devstack.paths import repo_root, tools_bin
from devstack.platform_names import PLATFORM_DEFAULTS, gpu_profiles

CHART = Path("charts") / "ml-platform"
KIND_CLUSTER = Path("k8s") / "kind" / "cluster.yaml"
KIND_VALUES = Path("k8s") / "values" / "kind.yaml"
# The reference rendering of docs/CONTRACTS.md section 3.
RELEASE = "ml-platform"
NAMESPACE = "ml-platform"
PLATFORM_CONFIG_MAP = "templates/platform/platform-configmap.yaml"
# `helm template` has no cluster to read generated Secrets from; platform.json holds none, so
# any fixed seed renders the same file.
RENDER_SEED = "devstack-generate"
# Fake `nvidia.com/gpu` per kind worker (k8s/kind/fake_gpus.py): two trials of a pool at once.
KIND_GPUS_PER_NODE = 2
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
MAKE_TARGET = "make generate-platform-defaults"


@dataclass(frozen=True)
class GeneratedFile:
    """One generated file: its path relative to the repository and its full text."""

    path: Path
    text: str


def find_helm(tools_dir: Path | None = None) -> Path:
    helm = (tools_dir or tools_bin()) / "helm"
    if not helm.is_file():
        raise ToolMissingError(f"helm not found at {helm}; run `make tools` to build it")
    return helm


def render_platform_json(chart: Path, helm: Path) -> str:
    """`platform.json` of the platform ConfigMap, rendered from the chart's default values.

    The ConfigMap needs none of the upstream charts, so a copy of the chart without them is
    rendered (no chart repository or package cache needed).
    """
    with tempfile.TemporaryDirectory(prefix="devstack-generate-") as tmp:
        copy = Path(tmp) / chart.name
        shutil.copytree(chart, copy, ignore=shutil.ignore_patterns("tmpcharts", "*.tgz"))
        chart_yaml = yaml.safe_load((copy / "Chart.yaml").read_text())
        chart_yaml["dependencies"] = [
            dep
            for dep in chart_yaml.get("dependencies", [])
            if str(dep.get("repository", "")).startswith("file://")
        ]
        (copy / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml, sort_keys=False))
        argv = [
            str(helm), "template", RELEASE, str(copy), "--namespace", NAMESPACE,
            "--show-only", PLATFORM_CONFIG_MAP, "--set", f"generatedSecrets.seed={RENDER_SEED}",
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DevstackError(
            f"helm could not render {chart / PLATFORM_CONFIG_MAP} from the default values "
            f"(fix charts/ml-platform/values.yaml):\n{result.stderr.strip()}"
        )
    config_map = yaml.safe_load(result.stdout)
    return str(config_map["data"]["platform.json"]).rstrip("\n") + "\n"


def taint_flag(taint: Mapping[str, str]) -> str:
    """`key=value:Effect`, as kubelet's --register-with-taints and kubectl spell a taint."""
    return f"{taint['key']}={taint['value']}:{taint['effect']}"


# ------------------------------------------------------------------------------ regions
class _IndentedDumper(yaml.SafeDumper):
    """Block style, sequences indented under their key, no anchors, multi-line strings as `|`
    blocks, strings that would read as another type (`"2"`) in double quotes."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    tag = "tag:yaml.org,2002:str"
    if "\n" in value:
        return dumper.represent_scalar(tag, value, style="|")
    if dumper.resolve(yaml.ScalarNode, value, (True, False)) != tag:
        return dumper.represent_scalar(tag, value, style='"')
    return dumper.represent_scalar(tag, value)


_IndentedDumper.add_representer(str, _represent_str)


def to_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False)


def begin_marker(name: str) -> str:
    return f"# BEGIN GENERATED {name}: `{MAKE_TARGET}` writes this part; do not edit"


def end_marker(name: str) -> str:
    return f"# END GENERATED {name}"


def replace_region(text: str, name: str, body: str, source: Path) -> str:
    """`text` with the lines between its BEGIN/END GENERATED `name` markers replaced by `body`
    (indented like the BEGIN marker)."""
    begin = re.search(rf"^([ \t]*)# BEGIN GENERATED {re.escape(name)}\b.*\n", text, re.M)
    end = re.search(rf"^[ \t]*# END GENERATED {re.escape(name)}\b.*\n", text, re.M)
    if begin is None or end is None or end.start() < begin.end():
        raise DevstackError(
            f"{source} lost its `{begin_marker(name)}` / `{end_marker(name)}` lines; put them "
            f"back where the generated part belongs and run `{MAKE_TARGET}`"
        )
    indent = begin.group(1)
    lines = "".join(f"{indent}{line}\n" if line else "\n" for line in body.splitlines())
    return (
        text[: begin.start()]
        + f"{indent}{begin_marker(name)}\n"
        + lines
        + f"{indent}{end_marker(name)}\n"
        + text[end.end() :]
    )


# ------------------------------------------------------------------------------ kind
def kind_gpu_workers(platform: Mapping[str, Any], cpu_worker: Mapping[str, Any]) -> list[dict]:
    """One kind worker per GPU profile: the CPU worker's image and mounts, the pool's labels,
    its first GPU product, a fake GPU count and the taint registered by the kubelet."""
    join = {
        "kind": "JoinConfiguration",
        "nodeRegistration": {
            "kubeletExtraArgs": {"register-with-taints": taint_flag(platform["gpuTaint"])}
        },
    }
    workers = []
    for name, profile in gpu_profiles(platform).items():
        if not profile.get("gpuProducts"):
            raise DevstackError(
                f"GPU pool {name} lists no gpuProducts; the kind worker needs one for its "
                f"{GPU_PRODUCT_LABEL} label (set gpuPools.{name}.gpuProducts in values.yaml)"
            )
        labels = {
            **profile["nodeLabels"],
            GPU_PRODUCT_LABEL: profile["gpuProducts"][0],
            GPU_COUNT_LABEL: str(max(KIND_GPUS_PER_NODE, int(profile["gpus"]))),
        }
        worker: dict[str, Any] = {"role": "worker", "image": cpu_worker["image"], "labels": labels}
        if cpu_worker.get("extraMounts"):
            worker["extraMounts"] = cpu_worker["extraMounts"]
        worker["kubeadmConfigPatches"] = [to_yaml(join)]
        workers.append(worker)
    return workers


def kind_cluster(text: str, platform: Mapping[str, Any], source: Path) -> str:
    """k8s/kind/cluster.yaml with its GPU workers regenerated."""
    hand_written = replace_region(text, "gpu-workers", "", source)
    nodes = (yaml.safe_load(hand_written) or {}).get("nodes") or []
    cpu_workers = [n for n in nodes if n.get("role") == "worker" and not n.get("labels")]
    if not cpu_workers:
        raise DevstackError(
            f"{source} has no unlabelled worker (the CPU pool) outside the generated part; "
            "the GPU-like workers are built like it"
        )
    workers = kind_gpu_workers(platform, cpu_workers[0])
    return replace_region(text, "gpu-workers", to_yaml(workers) if workers else "", source)


def kind_values(text: str, platform: Mapping[str, Any], source: Path) -> str:
    """k8s/values/kind.yaml with every GPU pool requesting the cpu profile's resources."""
    cpu = platform["profiles"]["cpu"]
    pools = {
        name: {"resources": {"cpu": cpu["cpu"], "memory": cpu["memory"]}}
        for name in gpu_profiles(platform)
    }
    return replace_region(text, "gpu-pools", to_yaml({"gpuPools": pools}) if pools else "", source)


# ------------------------------------------------------------------------------ all
def generated_files(repo: Path | None = None, helm: Path | None = None) -> list[GeneratedFile]:
    """Every generated file, computed from the repository's chart and hand-written parts."""
    repo = repo or repo_root()
    platform_text = render_platform_json(repo / CHART, helm or find_helm())
    platform = json.loads(platform_text)
    return [
        GeneratedFile(PLATFORM_DEFAULTS, platform_text),
        GeneratedFile(
            KIND_CLUSTER, kind_cluster((repo / KIND_CLUSTER).read_text(), platform, KIND_CLUSTER)
        ),
        GeneratedFile(
            KIND_VALUES, kind_values((repo / KIND_VALUES).read_text(), platform, KIND_VALUES)
        ),
    ]


def write(files: list[GeneratedFile], out: Path) -> list[Path]:
    """Write `files` under `out`; returns the paths whose content changed."""
    changed = []
    for generated in files:
        target = out / generated.path
        if target.is_file() and target.read_text() == generated.text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(generated.text)
        changed.append(generated.path)
    return changed
