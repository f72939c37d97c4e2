"""Helpers and fixtures for the dev-loop tests: skaffold.yaml, the Dockerfiles, the kind/cloud configs.

Imported by name (`devloop_support`, unique across tests/) because every test folder has its
own conftest.py; tests/devloop/conftest.py re-exports the fixtures.

Nothing here needs Docker, a cluster or the network: configs are parsed and validated
against schemas, `uv export --frozen` reads only uv.lock, and hadolint is the binary the
venv ships. An input that another part of the project has not delivered yet makes the test
that needs it FAIL with a message naming the missing file, never skip.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_chart import shared_schema

REPO = Path(__file__).resolve().parents[2]
SKAFFOLD_SCHEMA_ENV = "ML_PLATFORM_SKAFFOLD_SCHEMA"
SKAFFOLD_SCHEMA = shared_schema(SKAFFOLD_SCHEMA_ENV, "skaffold", "v4beta14.json")
AIRFLOW_CHART_SCHEMA = shared_schema(
    "ML_PLATFORM_AIRFLOW_SCHEMA", "airflow-chart", "values.schema.json"
)
CHART_DIR = REPO / "charts" / "ml-platform"
DOCKERFILES = {
    "trainer": REPO / "images" / "trainer" / "Dockerfile",
    "airflow": REPO / "images" / "airflow" / "Dockerfile",
    "platform-tools": REPO / "images" / "platform-tools" / "Dockerfile",
}
WORKSPACE_FILES = (
    "pyproject.toml",
    "uv.lock",
    "images/trainer/pyproject.toml",
    "images/taint-reconciler/pyproject.toml",
    "images/platform-tools/pyproject.toml",
    "scripts/devstack/pyproject.toml",
)


def require(path: Path, who: str) -> Path:
    """Fail (not skip) with a message naming the missing input and the part that owns it."""
    if not path.exists():
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        pytest.fail(f"{shown} does not exist yet - {who}", pytrace=False)
    return path


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# ------------------------------------------------------------------ JSON patch (RFC 6902)
def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {path!r}")
    return [tok.replace("~1", "/").replace("~0", "~") for tok in path[1:].split("/")]


def apply_json_patch(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """Apply add/replace/remove operations (what skaffold profiles use) to a copy of `doc`.

    Raises KeyError/IndexError when a path does not exist where RFC 6902 requires it to,
    which is what skaffold reports as a profile that cannot be applied.
    """
    out = copy.deepcopy(doc)
    for op in patch:
        kind = op.get("op", "replace")  # skaffold's default op
        *parents, last = _pointer(op["path"])
        target = out
        for tok in parents:
            target = target[int(tok)] if isinstance(target, list) else target[tok]
        if isinstance(target, list):
            if kind == "add":
                target.insert(len(target) if last == "-" else int(last), op["value"])
            elif kind == "replace":
                target[int(last)] = op["value"]
            elif kind == "remove":
                del target[int(last)]
            else:
                raise ValueError(f"unsupported op {kind!r}")
        else:
            if kind == "add":
                target[last] = op["value"]
            elif kind == "replace":
                if last not in target:
                    raise KeyError(f"replace of missing member {op['path']!r}")
                target[last] = op["value"]
            elif kind == "remove":
                del target[last]
            else:
                raise ValueError(f"unsupported op {kind!r}")
    return out


# ------------------------------------------------------------------ uv export, as the images run it
def uv_binary() -> str:
    for candidate in (REPO / ".tools" / "uv" / "bin" / "uv", shutil.which("uv")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.fail("uv not found (.tools/uv/bin/uv or PATH): run `make venv`", pytrace=False)


def dockerfile_uv_exports(dockerfile: Path) -> list[list[str]]:
    """The `python -m uv export …` commands of a Dockerfile's RUN lines, as argv lists."""
    text = dockerfile.read_text().replace("\\\n", " ")
    commands = []
    for match in re.finditer(r"python -m uv export(.*?)(?:&&|;|$)", text, flags=re.MULTILINE):
        commands.append(["export", *shlex.split(match.group(1))])
    return commands


def run_uv_export(args: list[str], tmp_path: Path) -> str:
    """Run `uv <args>` in a copy of the workspace's pyproject files + lock (what the image
    build context holds); the --output-file is redirected into tmp_path; returns its text."""
    work = tmp_path / "ctx"
    for rel in WORKSPACE_FILES:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(require(REPO / rel, "workspace file"), work / rel)
    args = list(args)
    out = tmp_path / "requirements.txt"
    if "--output-file" in args:
        args[args.index("--output-file") + 1] = str(out)
    else:
        args += ["--output-file", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env["UV_NO_CONFIG"] = "1"
    result = subprocess.run(
        [uv_binary(), *args, "--quiet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"uv {shlex.join(args)} failed:\n{result.stderr}"
    return out.read_text()


def requirement_pins(requirements: str) -> dict[str, str]:
    """name -> version of every `name==version` entry of an exported requirements file."""
    pins = {}
    for line in requirements.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def skaffold_config() -> dict[str, Any]:
    return load_yaml(require(REPO / "skaffold.yaml", "dev-loop part"))


@pytest.fixture(scope="session")
def skaffold_schema() -> dict[str, Any]:
    return json.loads(
        require(
            SKAFFOLD_SCHEMA, f"shared schema (../shared/schemas, or set {SKAFFOLD_SCHEMA_ENV})"
        ).read_text()
    )


@pytest.fixture(scope="session")
def chart_values() -> dict[str, Any]:
    return load_yaml(require(CHART_DIR / "values.yaml", "the chart part (charts/ml-platform)"))


@pytest.fixture(scope="session")
def kind_config() -> dict[str, Any]:
    return load_yaml(require(REPO / "k8s" / "kind" / "cluster.yaml", "dev-loop part"))


@pytest.fixture(scope="session")
def lock_pins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every package version of the whole lock (all members, all groups)."""
    text = run_uv_export(
        [
            "export",
            "--frozen",
            "--all-packages",
            "--no-emit-workspace",
            "--format",
            "requirements.txt",
        ],
        tmp_path_factory.mktemp("lock"),
    )
    return requirement_pins(text)
