"""`dags/` is self-contained: what git-sync delivers imports only itself, the standard library
and packages the Airflow image installs (the locked closure images/airflow/Dockerfile
exports). The trainer stack (ml_trainer, torch, ...) runs in pods, never in Airflow."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

import pytest
from devloop_support import (
    DOCKERFILES,
    REPO,
    dockerfile_uv_exports,
    requirement_pins,
    run_uv_export,
)

DAGS = REPO / "dags"


def python_files() -> list[Path]:
    return sorted(p for p in DAGS.rglob("*.py") if "__pycache__" not in p.parts)


def local_top_level_names() -> set[str]:
    return {p.stem for p in DAGS.glob("*.py")} | {
        p.name for p in DAGS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))
    }


class ImportCollector(ast.NodeVisitor):
    """Absolute imports executed at run time (`if TYPE_CHECKING:` blocks are skipped)."""

    def __init__(self) -> None:
        self.modules: list[tuple[str, int]] = []

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.modules += [(alias.name, node.lineno) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.modules.append((node.module, node.lineno))


def imports_of(path: Path) -> list[tuple[str, int]]:
    collector = ImportCollector()
    collector.visit(ast.parse(path.read_text(), filename=str(path)))
    return collector.modules


@pytest.fixture(scope="module")
def airflow_image_distributions(tmp_path_factory) -> set[str]:
    (command,) = dockerfile_uv_exports(DOCKERFILES["airflow"])
    text = run_uv_export(command, tmp_path_factory.mktemp("airflow-image"))
    return set(requirement_pins(text))


@pytest.fixture(scope="module")
def module_providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def test_dags_folder_has_dag_files_and_ignores_its_support_package():
    assert DAGS.is_dir(), "dags/ does not exist yet - the DAG part"
    dag_files = [p for p in DAGS.glob("*.py")]
    assert dag_files, "dags/ has no DAG file at its top level yet - the DAG part (dags/*.py)"
    ignore = (DAGS / ".airflowignore").read_text().split()
    assert "ml_pipeline/" in ignore or "ml_pipeline" in ignore


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_resolve_inside_the_airflow_image(
    path, airflow_image_distributions, module_providers
):
    local = local_top_level_names()
    providers = module_providers
    problems = []
    for module, line in imports_of(path):
        top = module.split(".")[0]
        if top in local or top in sys.stdlib_module_names or top == "__future__":
            continue
        if top == "ml_trainer":
            problems.append(f"line {line}: {module} is the trainer package - call it in a pod")
            continue
        dists = {d.lower().replace("_", "-") for d in providers.get(top, [])}
        if not dists:
            problems.append(f"line {line}: no installed package provides {module!r}")
        elif not dists & airflow_image_distributions:
            problems.append(
                f"line {line}: {module!r} comes from {sorted(dists)}, which the Airflow image "
                "does not install (add it to the root pyproject and the lock, or move the code "
                "into the trainer)"
            )
    assert not problems, f"{path.relative_to(REPO)}:\n" + "\n".join(problems)


def test_the_checker_rejects_the_trainer_stack(tmp_path, airflow_image_distributions):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import torch\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sklearn\n"
    )
    found = [m for m, _ in imports_of(probe)]
    assert found == ["torch", "typing"], "TYPE_CHECKING imports must be skipped"
    assert "torch" not in airflow_image_distributions
