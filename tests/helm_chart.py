"""`prepare_chart(dest)`: charts/ml-platform with its real dependency packages, ready for helm.

The umbrella depends on three upstream charts that are never committed (Airflow, MinIO, the
NVIDIA device plugin). `helm dependency build` downloads them where a chart repository is
reachable; here they come from a cache folder of released packages instead:

- `$ML_PLATFORM_CHART_CACHE` when set, else the nearest `shared/charts` folder next to the
  repository or next to one of its parent folders (`../shared/charts` for a checkout in
  `/work/main`), holding e.g. `minio-5.4.0.tgz` and `nvidia-device-plugin-0.20.0.tgz`;
- a package already in `charts/ml-platform/charts/` (after a networked `helm dependency
  build`) is used as well.

The copy lists exactly the dependencies it holds. Only the official Airflow chart may be
missing (no machine of this project can download it): it is dropped from the copy's
Chart.yaml and reported in `PreparedChart.omitted`, and its values are validated against its
published schema instead (tests/chart). Any other missing package is an error that says how
to get it; nothing is skipped silently.

Used by tests/chart (render tests) and by the cluster tests (`helm install` of the copy).
"""

from __future__ import annotations

import copy
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "ml-platform"
CACHE_ENV = "ML_PLATFORM_CHART_CACHE"

# The values profiles of charts/ml-platform/ci (render tests and cluster installs):
# profile name -> values files under charts/ml-platform/ci/.
PROFILES: dict[str, tuple[str, ...]] = {
    "default": (),
    "external-s3-db": ("external-s3-db-values.yaml",),
    "workload-identity": ("workload-identity-values.yaml",),
    "h100-only": ("h100-only-values.yaml",),
    "no-device-plugin": ("no-device-plugin-values.yaml",),
    "git-dag-bundle": ("git-dag-bundle-values.yaml",),
    "mlflow-ingress": ("mlflow-ingress-values.yaml",),
    "second-release": ("second-release-values.yaml",),
}

RELEASE = "ml-platform"
NAMESPACE = "ml-platform"
# (release, namespace) a profile is installed as; the others use RELEASE in NAMESPACE.
PROFILE_RELEASES: dict[str, tuple[str, str]] = {"second-release": ("platform", "mlp")}


def profile_release(profile: str) -> tuple[str, str]:
    return PROFILE_RELEASES.get(profile, (RELEASE, NAMESPACE))


# Dependencies that no machine of this project can download, with what is done instead.
NOT_OBTAINABLE_OFFLINE = {
    "airflow": (
        "the official Apache Airflow chart package is not available offline; its objects are "
        "not rendered, the `airflow:` values are validated against its values schema instead"
    ),
}


class MissingChartPackage(RuntimeError):
    """A dependency package of charts/ml-platform is neither in the cache nor in charts/."""


@dataclass(frozen=True)
class PreparedChart:
    """A temporary copy of charts/ml-platform that helm can render or install as it is."""

    path: Path
    included: list[str] = field(default_factory=list)  # "minio 5.4.0 (<where from>)"
    omitted: dict[str, str] = field(default_factory=dict)  # dependency name -> why


def shared_folder(*parts: str) -> Path | None:
    """`<ancestor>/shared/<parts>` for the nearest ancestor of the repository that has it
    (the shared folder sits next to the main checkout; worktrees live one level deeper)."""
    for ancestor in REPO.parents:
        candidate = ancestor.joinpath("shared", *parts)
        if candidate.exists():
            return candidate
    return None


def shared_schema(env: str, *parts: str) -> Path:
    """An upstream schema: the file `$env` names, else `shared/schemas/<parts>`. A missing
    one is a path ending in "(not found)", so the test that reads it fails naming both."""
    configured = os.environ.get(env)
    if configured:
        return Path(configured)
    found = shared_folder("schemas", *parts)
    return found or Path("shared", "schemas", *parts[:-1], f"{parts[-1]} (not found)")


def chart_cache() -> Path | None:
    """The folder of cached chart packages ($ML_PLATFORM_CHART_CACHE or shared/charts)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return shared_folder("charts")


def _package_chart(package: Path) -> dict[str, Any]:
    """Chart.yaml of a packaged chart (`<name>/Chart.yaml` inside the .tgz)."""
    with tarfile.open(package) as archive:
        for member in archive.getmembers():
            if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                handle = archive.extractfile(member)
                if handle is not None:
                    return yaml.safe_load(handle.read())
    raise MissingChartPackage(f"{package} is not a chart package (no <name>/Chart.yaml inside)")


def _find_package(dep: dict[str, Any], cache: Path | None) -> Path | None:
    filename = f"{dep['name']}-{dep['version']}.tgz"
    for folder in (CHART / "charts", cache):
        if folder is None:
            continue
        package = folder / filename
        if package.is_file():
            meta = _package_chart(package)
            if (meta.get("name"), str(meta.get("version"))) != (dep["name"], str(dep["version"])):
                raise MissingChartPackage(
                    f"{package} holds chart {meta.get('name')} {meta.get('version')}, "
                    f"not {dep['name']} {dep['version']}: replace it with the released package."
                )
            return package
    return None


def _missing_message(dep: dict[str, Any], cache: Path | None) -> str:
    filename = f"{dep['name']}-{dep['version']}.tgz"
    where = f"the cache folder {cache}" if cache else "no cache folder (none found)"
    return (
        f"chart dependency {dep['name']} {dep['version']} ({dep['repository']}) is missing: "
        f"{filename} is neither in {CHART / 'charts'} nor in {where}. Get it with "
        f"`helm dependency build charts/ml-platform` on a machine that reaches "
        f"{dep['repository']}, or put the released {filename} into a folder and set "
        f"{CACHE_ENV} to that folder."
    )


def prepare_chart(dest_dir: Path) -> PreparedChart:
    """Copy charts/ml-platform into `dest_dir/ml-platform` with its dependency packages."""
    cache = chart_cache()
    copy = Path(dest_dir) / CHART.name
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("tmpcharts", "Chart.lock", "*.tgz"))
    chart_yaml = yaml.safe_load((copy / "Chart.yaml").read_text())
    kept: list[dict[str, Any]] = []
    included: list[str] = []
    omitted: dict[str, str] = {}
    for dep in chart_yaml.get("dependencies", []):
        label = f"{dep['name']} {dep['version']}"
        if str(dep.get("repository", "")).startswith("file://"):
            kept.append(dep)
            included.append(f"{label} (local subchart {dep['repository']})")
            continue
        package = _find_package(dep, cache)
        if package is not None:
            shutil.copy2(package, copy / "charts" / package.name)
            kept.append(dep)
            included.append(f"{label} ({package})")
        elif dep["name"] in NOT_OBTAINABLE_OFFLINE:
            omitted[dep["name"]] = NOT_OBTAINABLE_OFFLINE[dep["name"]]
        else:
            raise MissingChartPackage(_missing_message(dep, cache))
    chart_yaml["dependencies"] = kept
    (copy / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml, sort_keys=False))
    return PreparedChart(path=copy, included=included, omitted=omitted)


def deep_merge(base: Any, overlay: Any) -> Any:
    """Helm's values merge: maps merge recursively, everything else (lists too) replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(overlay)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python tests/helm_chart.py",
        description="Copy charts/ml-platform with its dependency packages into DEST (for a "
        "`helm install` by hand, e.g. into the cluster harness) and print the chart's path.",
    )
    parser.add_argument("dest", type=Path, help="an empty folder to put the chart copy in")
    args = parser.parse_args(argv)
    prepared = prepare_chart(args.dest)
    for name, why in prepared.omitted.items():
        sys.stderr.write(f"left out {name}: {why}\n")
    sys.stdout.write(f"{prepared.path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
