"""The docs name what exists: every repository path and `make` target in docs/recipes.md, and
every task of the training DAG in the one task graph (docs/pipeline.md)."""

from __future__ import annotations

import re

import pytest
from consistency_support import REPO
from devstack.dag_pods import parse_pipeline

RECIPES = REPO / "docs" / "recipes.md"
PIPELINE_DOC = REPO / "docs" / "pipeline.md"
TOP_LEVEL = ("charts/", "dags/", "images/", "k8s/", "tests/", "scripts/", "bench/", "docs/")
DAG_ID = "ml_full_training_pipeline"


def quoted(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def make_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.MULTILINE))


def test_recipes_name_only_files_that_exist() -> None:
    paths = [q for q in quoted(RECIPES.read_text()) if q.startswith(TOP_LEVEL) and " " not in q]
    assert len(paths) >= 10, "the recipes name their files in backquotes"
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"docs/recipes.md names files that do not exist: {missing}"


def test_recipes_name_only_make_targets_that_exist() -> None:
    named = {q.split()[1] for q in quoted(RECIPES.read_text()) if q.startswith("make ")}
    assert named, "the recipes name their make targets"
    missing = named - make_targets()
    assert not missing, f"docs/recipes.md names make targets the Makefile lacks: {missing}"


def task_graph(doc: str) -> str:
    """The first fenced block of docs/pipeline.md: the DAGs' task graph."""
    match = re.search(r"^```\n(.*?)^```", doc, flags=re.MULTILINE | re.DOTALL)
    assert match, "docs/pipeline.md lost its task graph (the first ``` block)"
    return match.group(1)


@pytest.fixture(scope="module")
def training_task_ids() -> list[str]:
    with parse_pipeline() as bag:
        dag = bag.dags[DAG_ID]
        return [task.task_id.rsplit(".", 1)[-1] for task in dag.tasks]


def test_the_task_graph_shows_every_task_of_the_training_dag(training_task_ids) -> None:
    graph = task_graph(PIPELINE_DOC.read_text())
    missing = [t for t in training_task_ids if not re.search(rf"\b{t}\b", graph)]
    assert not missing, f"add {missing} to the task graph at the top of docs/pipeline.md"
