"""`render_chart(values=…, show_only=[…])`: `helm template` of charts/ml-platform, parsed.

The chart is rendered from a temporary copy made by `helm_chart.prepare_chart` (tests/
helm_chart.py): with the real MinIO and NVIDIA device plugin packages from the chart cache,
so their objects are rendered and checked like ours. The official Airflow chart is the one
package no machine of this project can download: it is left out of the copy (the pytest
header says so) and the `airflow:` block is validated against its published values schema
(`AIRFLOW_SCHEMA`, env ML_PLATFORM_AIRFLOW_SCHEMA) instead.
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
from devstack.platform_names import gpu_profiles, load_platform_config
from helm_chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    REPO,
    PreparedChart,
    prepare_chart,
    shared_schema,
)

CI_VALUES = CHART / "ci"
# libyaml's safe loader where PyYAML has it: parsing a full render is 8x faster than pure Python.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The GPU pools of the default values (as the generated platform config lists them), for tests
# that switch all of them off or list them: a new default pool needs no test change.
DEFAULT_POOLS = tuple(gpu_profiles(load_platform_config(REPO)))
NO_GPU_POOLS = {"gpuPools": dict.fromkeys(DEFAULT_POOLS)}


def external_s3(
    endpoint: str = "https://s3.example.com", keys: tuple[str, str] | None = None, **settings: Any
) -> dict[str, Any]:
    """Values that replace MinIO with an external S3 endpoint: `settings` go into externalS3,
    `keys` (access key id, secret) into objectStore.credentials."""
    values: dict[str, Any] = {
        "minio": {"enabled": False},
        "externalS3": {"enabled": True, "endpoint": endpoint, **settings},
    }
    if keys is not None:
        access_key_id, secret = keys
        credentials = {"accessKeyId": access_key_id, "secretAccessKey": secret}
        values["objectStore"] = {"credentials": credentials}
    return values


def external_database(**settings: Any) -> dict[str, Any]:
    """Values that replace the bundled PostgreSQL with an external one (`settings` override)."""
    database = {"enabled": True, "host": "db", "username": "u", "password": "p", **settings}
    return {"postgresql": {"enabled": False}, "externalDatabase": database}


HELM = Path(os.environ.get("HELM", REPO / ".tools" / "bin" / "helm"))
AIRFLOW_SCHEMA_ENV = "ML_PLATFORM_AIRFLOW_SCHEMA"
AIRFLOW_SCHEMA = shared_schema(AIRFLOW_SCHEMA_ENV, "airflow-chart", "values.schema.json")

# `helm template` has no cluster, so generated credentials come from generatedSecrets.seed
# (values.yaml): every render of the tests passes this one unless a test says otherwise.
TEST_SEED = "chart-tests-seed"

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


CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "CustomResourceDefinition",
}


class HelmError(RuntimeError):
    """helm exited non-zero; `stderr` holds its message (schema or check-values failures)."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


def helm_available() -> bool:
    return HELM.is_file() and os.access(HELM, os.X_OK)


@functools.cache
def _prepared() -> PreparedChart:
    """The temporary chart copy with its dependency packages (made once per test session)."""
    workdir = Path(tempfile.mkdtemp(prefix="ml-platform-chart-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    prepared = prepare_chart(workdir)
    copy = prepared.path
    (copy / _DUMP_TEMPLATE).write_text(_DUMP)
    # NOTES.txt is not part of `helm template` output: render it through a named template.
    notes = (copy / "templates" / "NOTES.txt").read_text()
    (copy / "templates" / "_zz_test_notes.tpl").write_text(
        '{{- define "zz-test.notes" -}}\n' + notes + "{{- end -}}\n"
    )
    (copy / _NOTES_TEMPLATE).write_text(_NOTES)
    return prepared


def chart_copy() -> Path:
    return _prepared().path


def prepared_chart() -> PreparedChart:
    return _prepared()


def helm(*args: str, chart: Path | None = None) -> str:
    cmd = [str(HELM), *args]
    if chart is not None:
        cmd.append(str(chart))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise HelmError(cmd, proc.stderr)
    return proc.stdout


def _values_args(
    values: Mapping[str, Any] | None,
    values_files: Iterable[str | Path],
    tmp: Path,
    seed: str | None = TEST_SEED,
) -> list[str]:
    args: list[str] = []
    if seed is not None:
        args += ["--set-string", f"generatedSecrets.seed={seed}"]
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
    seed: str | None = TEST_SEED,
) -> list[dict[str, Any]]:
    """Render the chart and return its objects (hooks and tests included), in helm's order.

    `show_only`: template paths relative to the chart, e.g. "templates/gpu/training-resourcequota.yaml"
    or "charts/mlflow/templates/mlflow-deployment.yaml". `values_files` are relative to ci/.
    Objects of the upstream charts that name no namespace get `namespace` (where helm installs
    them), so every namespaced object says where it lands. `seed=None` renders without
    generatedSecrets.seed.
    """
    copy = chart_copy()
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "template",
            name,
            "--namespace",
            namespace,
            *_values_args(values, values_files, Path(tmp), seed),
        ]
        for template in show_only or ():
            args += ["--show-only", template]
        out = helm(*args, chart=copy)
    docs = [
        d
        for d in yaml.load_all(out, Loader=YAML_LOADER)
        if d and not (d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "computed-values")
    ]
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"].setdefault("namespace", namespace)
    return docs


def computed_values(
    values: Mapping[str, Any] | None = None,
    *,
    values_files: Iterable[str | Path] = (),
    name: str = RELEASE,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """The values Helm hands to the templates: values.yaml merged with the overrides."""
    merged = dict(values or {})
    merged["global"] = {**merged.get("global", {}), "mlPlatformTestDumpValues": True}
    copy = chart_copy()
    with tempfile.TemporaryDirectory() as tmp:
        out = helm(
            "template", name, "--namespace", namespace,
            *_values_args(merged, values_files, Path(tmp)),
            "--show-only", _DUMP_TEMPLATE,
            chart=copy,
        )  # fmt: skip
    doc = yaml.load(out, Loader=YAML_LOADER)
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
    values: Mapping[str, Any] | None = None,
    *,
    values_files: Iterable[str | Path] = (),
    name: str = RELEASE,
    namespace: str = NAMESPACE,
    seed: str | None = TEST_SEED,
) -> str:
    """The message helm prints when these values are refused (schema or check-values)."""
    try:
        render_chart(values, values_files=values_files, name=name, namespace=namespace, seed=seed)
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


def is_ours(obj: Mapping[str, Any]) -> bool:
    """An object of this chart or its mlflow subchart (not MinIO's or the device plugin's)."""
    chart = (obj["metadata"].get("labels") or {}).get("helm.sh/chart", "")
    return chart.startswith(("ml-platform-", "mlflow-"))


def ours(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [o for o in objects if is_ours(o)]


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
