"""Session fixtures shared by every test folder.

`stack`: the embedded local stack (real MinIO + real MLflow server + a migrated Airflow home)
in a temp root, started on first use and always stopped at the end of the session, also
after failures, Ctrl-C or SIGTERM. Tests that do not request it start no servers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from devstack.interrupts import sigterm_as_ctrl_c
from devstack.stack import Stack

STACK_MARKER = "stack"

# Airflow reads its config on first import: keep the tests off the developer's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-tests-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running `devstack.stack.Stack` on free ports; `stack.env()` is the client env."""
    local_stack = Stack(
        tmp_path_factory.mktemp("devstack"),
        minio_port=None,
        minio_console_port=None,
        mlflow_port=None,
    )
    # A CI runner that stops pytest with SIGTERM still gets the servers stopped.
    with sigterm_as_ctrl_c():
        try:
            local_stack.up()
            yield local_stack
        finally:
            local_stack.down()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the `stack` marker and the `stack` fixture together.

    A test that uses the fixture is marked (so `-m "not stack"` leaves the servers off), and
    a test marked `stack` gets the fixture (the stack is up before it runs).
    """
    for item in items:
        uses_fixture = STACK_MARKER in getattr(item, "fixturenames", ())
        marked = item.get_closest_marker(STACK_MARKER) is not None
        if uses_fixture and not marked:
            item.add_marker(pytest.mark.stack)
        elif marked and not uses_fixture:
            item.fixturenames.append(STACK_MARKER)  # type: ignore[attr-defined]
