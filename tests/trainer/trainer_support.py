"""Helpers for the trainer tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ml_trainer.errors import TrainerError
from ml_trainer.storage import ObjectStore, S3Uri

# the environment the trainer reads; anything else under these prefixes is a caller's leftover
TRAINER_ENV = (
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
)
FOREIGN_PREFIXES = ("AWS_", "MLFLOW_")


class MemoryStore(ObjectStore):
    """An in-memory object store for unit tests (the stack tests use real MinIO)."""

    def __init__(self) -> None:
        super().__init__(client=object())
        self.objects: dict[str, bytes] = {}

    def read_bytes(self, uri: S3Uri, missing_fix: str = "check the URI.") -> bytes:
        if str(uri) not in self.objects:
            raise TrainerError(f"{uri} does not exist.", missing_fix)
        return self.objects[str(uri)]

    def write_bytes(self, uri: S3Uri, data: bytes, content_type: str = "") -> None:
        self.objects[str(uri)] = data

    def exists(self, uri: S3Uri) -> bool:
        return str(uri) in self.objects


def closed_port() -> int:
    """A real TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class CliRun:
    """What one `trainer` invocation returned: exit code, its XCom (if any), its stderr."""

    code: int
    xcom: dict[str, Any] | None
    stderr: str


def run_trainer(
    argv: list[str], xcom_path: Path, capsys: pytest.CaptureFixture[str] | None = None
) -> CliRun:
    """`trainer <argv>` in this process, as a pod runs it (same entry point, same XCom file)."""
    from ml_trainer.cli import main

    os.environ["XCOM_RETURN_PATH"] = str(xcom_path)
    xcom_path.unlink(missing_ok=True)
    if capsys is not None:
        capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    stderr = capsys.readouterr().err if capsys is not None else ""
    xcom = json.loads(xcom_path.read_text()) if xcom_path.exists() else None
    return CliRun(code, xcom, stderr)


def trainer_env_of(stack: Any) -> dict[str, str]:
    """The part of the stack's environment the trainer reads (docs/CONTRACTS.md section 4)."""
    return {name: value for name, value in stack.env().items() if name in TRAINER_ENV}


@contextlib.contextmanager
def isolated_environ(**env: str) -> Iterator[None]:
    """os.environ without the caller's AWS/MLflow settings, plus `env`; restored afterwards."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(FOREIGN_PREFIXES)]:
        del os.environ[name]
    os.environ.update(env)
    try:
        yield
    finally:
        if "mlflow" in sys.modules:
            import mlflow

            mlflow.set_tracking_uri(saved.get("MLFLOW_TRACKING_URI"))
        os.environ.clear()
        os.environ.update(saved)
