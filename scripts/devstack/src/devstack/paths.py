"""Where things live: the repository, the project-local tools and the default state root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devstack.errors import ToolMissingError


def repo_root() -> Path:
    """The ml-platform checkout this package belongs to (the folder holding `scripts/devstack`).

    `DEVSTACK_REPO_ROOT` overrides it; otherwise it is found upwards from this file (the
    package is installed editable from the uv workspace), then from the working directory.
    """
    override = os.environ.get("DEVSTACK_REPO_ROOT")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "scripts" / "devstack" / "pyproject.toml").is_file():
                return candidate
    return Path.cwd().resolve()


def default_root() -> Path:
    """The default state folder: `<repo>/.local` (git-ignored)."""
    return repo_root() / ".local"


def tools_bin() -> Path:
    """Project-local binaries built by `make tools`."""
    return repo_root() / ".tools" / "bin"


def venv_bin() -> Path:
    """The `bin/` folder of the running interpreter's environment (where `mlflow`, `airflow` are)."""
    return Path(sys.executable).parent


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def venv_executable(name: str, what: str, bin_dir: Path | None = None) -> Path:
    """`<bin_dir>/<name>` (default: the running interpreter's environment), else a one-line
    error naming `what` and `make setup`."""
    candidate = (bin_dir or venv_bin()) / name
    if is_executable(candidate):
        return candidate
    raise ToolMissingError(
        f"{what} {candidate} not found; run `make setup` (it runs `make venv` and `make tools`)"
    )
