"""`render_chart(values=…, show_only=[…])`: `helm template` of charts/ml-platform, parsed.

Upstream charts (airflow, minio, nvidia-device-plugin) are downloaded by `helm dependency
build`, which needs the network, and are never committed. So the chart is rendered from a
temporary copy whose Chart.yaml lists only the dependencies that are present (the local
`mlflow` subchart, plus any upstream chart already unpacked or downloaded into charts/); the
skipped ones are reported in the pytest header and by `skipped_dependencies()`.

The templates of this chart read the subchart *values* (`.Values.airflow…`, `.Values.minio…`)
only, never their templates, so everything this chart owns renders the same either way.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "ml-platform"
CI_VALUES = CHART / "ci"
HELM = Path(os.environ.get("HELM", REPO / ".tools" / "bin" / "helm"))
AIRFLOW_SCHEMA = REPO.parent / "shared" / "schemas" / "airflow-chart" / "values.schema.json"

# Profile name -> values files under charts/ml-platform/ci/ (the four profiles + GitDagBundle).
PROFILES: dict[str, tuple[str, ...]] = {
    "default": (),
    "external-s3-db": ("external-s3-db-values.yaml",),
    "h100-only": ("h100-only-values.yaml",),
    "no-device-plugin": ("no-device-plugin-values.yaml",),
    "git-dag-bundle": ("git-dag-bundle-values.yaml",),
}

RELEASE = "ml-platform"
NAMESPACE = "ml-platform"

# A template that exists only in the temporary copy: it prints the values Helm computed
# (defaults + overrides, with Helm's own merge rules) when global.mlPlatformTestDumpValues is set.
_DUMP_TEMPLATE = "templates/zz-test-computed-values.yaml"
_DUMP = """{{- if (.Values.global).mlPlatformTestDumpValues }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: computed-values
data:
  values.json: {{ toJson .Values | quote }}
{{- end }}
"""


_NOTES_TEMPLATE = "templates/zz-test-notes.yaml"
_NOTES = """{{- if (.Values.global).mlPlatformTestNotes }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  NOTES.txt: {{ include "zz-test.notes" . | quote }}
{{- end }}
"""


class HelmError(RuntimeError):
    """helm exited non-zero; `stderr` holds its message (schema or check-values failures)."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


def helm_available() -> bool:
    return HELM.is_file() and os.access(HELM, os.X_OK)


def _dependency_present(charts_dir: Path, dep: Mapping[str, Any]) -> bool:
    if str(dep.get("repository", "")).startswith("file://"):
        return (CHART / str(dep["repository"])[len("file://") :] / "Chart.yaml").is_file()
    name, version = dep["name"], str(dep["version"])
    return (charts_dir / f"{name}-{version}.tgz").is_file() or (
        charts_dir / name / "Chart.yaml"
    ).is_file()


@functools.cache
def _chart_copy() -> tuple[Path, tuple[str, ...]]:
    """The temporary chart copy (made once per test session) and the skipped dependencies."""
    workdir = Path(tempfile.mkdtemp(prefix="ml-platform-chart-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    copy = workdir / "ml-platform"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("tmpcharts"))
    chart_yaml = yaml.safe_load((copy / "Chart.yaml").read_text())
    kept, skipped = [], []
    for dep in chart_yaml.get("dependencies", []):
        if _dependency_present(copy / "charts", dep):
            kept.append(dep)
        else:
            skipped.append(f"{dep['name']} {dep['version']} ({dep['repository']})")
    chart_yaml["dependencies"] = kept
    (copy / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml, sort_keys=False))
    (copy / "Chart.lock").unlink(missing_ok=True)
    (copy / _DUMP_TEMPLATE).write_text(_DUMP)
    # NOTES.txt is not part of `helm template` output: render it through a named template.
    notes = (copy / "templates" / "NOTES.txt").read_text()
    (copy / "templates" / "_zz_test_notes.tpl").write_text(
        '{{- define "zz-test.notes" -}}\n' + notes + "{{- end -}}\n"
    )
    (copy / _NOTES_TEMPLATE).write_text(_NOTES)
    return copy, tuple(skipped)


def chart_copy() -> Path:
    return _chart_copy()[0]


def skipped_dependencies() -> tuple[str, ...]:
    return _chart_copy()[1]


def helm(*args: str, chart: Path | None = None) -> str:
    cmd = [str(HELM), *args]
    if chart is not None:
        cmd.append(str(chart))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise HelmError(cmd, proc.stderr)
    return proc.stdout


def _values_args(
    values: Mapping[str, Any] | None, values_files: Iterable[str | Path], tmp: Path
) -> list[str]:
    args: list[str] = []
    for f in values_files:
        path = Path(f)
        args += ["--values", str(path if path.is_absolute() else CI_VALUES / path)]
    if values:
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(dict(values)))
        args += ["--values", str(path)]
    return args


def render_chart(
    values: Mapping[str, Any] | None = None,
    show_only: Sequence[str] | None = None,
    *,
    values_files: Iterable[str | Path] = (),
    name: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """Render the chart and return its objects (hooks and tests included), in helm's order.

    `show_only`: template paths relative to the chart, e.g. "templates/gpu/training-resourcequota.yaml"
    or "charts/mlflow/templates/mlflow-deployment.yaml". `values_files` are relative to ci/.
    """
    copy = chart_copy()
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "template",
            name,
            "--namespace",
            namespace,
            *_values_args(values, values_files, Path(tmp)),
        ]
        for template in show_only or ():
            args += ["--show-only", template]
        out = helm(*args, chart=copy)
    docs = [d for d in yaml.safe_load_all(out) if d]
    return [
        d
        for d in docs
        if not (d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "computed-values")
    ]


def computed_values(
    values: Mapping[str, Any] | None = None, *, values_files: Iterable[str | Path] = ()
) -> dict[str, Any]:
    """The values Helm hands to the templates: values.yaml merged with the overrides."""
    merged = dict(values or {})
    merged["global"] = {**merged.get("global", {}), "mlPlatformTestDumpValues": True}
    copy = chart_copy()
    with tempfile.TemporaryDirectory() as tmp:
        out = helm(
            "template", RELEASE, "--namespace", NAMESPACE,
            *_values_args(merged, values_files, Path(tmp)),
            "--show-only", _DUMP_TEMPLATE,
            chart=copy,
        )  # fmt: skip
    doc = yaml.safe_load(out)
    result = json.loads(doc["data"]["values.json"])
    result["global"].pop("mlPlatformTestDumpValues", None)
    return result


def render_notes(
    values: Mapping[str, Any] | None = None, *, values_files: Iterable[str | Path] = ()
) -> str:
    """NOTES.txt as `helm install` would print it for these values."""
    merged = dict(values or {})
    merged["global"] = {**merged.get("global", {}), "mlPlatformTestNotes": True}
    (doc,) = render_chart(merged, [_NOTES_TEMPLATE], values_files=values_files)
    return doc["data"]["NOTES.txt"]


def render_error(
    values: Mapping[str, Any] | None = None, *, values_files: Iterable[str | Path] = ()
) -> str:
    """The message helm prints when these values are refused (schema or check-values)."""
    try:
        render_chart(values, values_files=values_files)
    except HelmError as exc:
        return exc.stderr
    raise AssertionError(f"helm accepted values it should refuse: {values}")


def by_kind_name(
    objects: Iterable[Mapping[str, Any]], kind: str, name: str, namespace: str | None = None
) -> dict[str, Any]:
    matches = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(matches) == 1, (
        f"expected one {kind} {name} in {namespace or 'any namespace'}, found {len(matches)}"
    )
    return matches[0]


def pod_specs(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod spec(s) inside a workload object (Pod, Deployment, StatefulSet, Job, CronJob…)."""
    kind = obj["kind"]
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if "template" in spec:
        return [spec["template"]["spec"]]
    return []


def platform_config(objects: Iterable[Mapping[str, Any]], release: str = RELEASE) -> dict[str, Any]:
    cm = by_kind_name(objects, "ConfigMap", f"{release}-platform")
    return json.loads(cm["data"]["platform.json"])
