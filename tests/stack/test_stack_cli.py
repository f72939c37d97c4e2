"""`devstack up|status|env|down` end to end, on its own root and with taken preferred ports."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from devstack.cli import build_parser
from devstack.ports import HOST

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize("command", ["up", "down", "status", "env"])
def test_every_subcommand_explains_itself_with_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: devstack {command}" in out and "--root" in out


@pytest.mark.slow
def test_cli_up_status_reuse_down_on_taken_ports_leaves_no_process(
    stack_root: Path, devstack_cli: CliRunner, leftover_processes: Callable[[Path], list[str]]
) -> None:
    root = str(stack_root)
    with socket.socket() as minio_blocker, socket.socket() as mlflow_blocker:
        for blocker in (minio_blocker, mlflow_blocker):
            blocker.bind((HOST, 0))
            blocker.listen()
        minio_taken = minio_blocker.getsockname()[1]
        mlflow_taken = mlflow_blocker.getsockname()[1]
        try:
            up = devstack_cli(
                "up",
                "--root",
                root,
                "--minio-port",
                str(minio_taken),
                "--minio-console-port",
                "0",
                "--mlflow-port",
                str(mlflow_taken),
            )
            assert up.returncode == 0, up.stderr
            assert f"minio: port {minio_taken} on {HOST} is taken; using port" in up.stderr
            assert f"mlflow: port {mlflow_taken} on {HOST} is taken; using port" in up.stderr

            status = devstack_cli("status", "--root", root)
            assert status.returncode == 0, status.stdout
            assert [line.split()[:2] for line in status.stdout.splitlines()] == [
                ["minio", "healthy"],
                ["mlflow", "healthy"],
            ]

            env = dict(
                line.removeprefix("export ").split("=", 1)
                for line in devstack_cli("env", "--root", root).stdout.splitlines()
            )
            assert not env["AWS_ENDPOINT_URL"].endswith(f":{minio_taken}")
            assert not env["MLFLOW_TRACKING_URI"].endswith(f":{mlflow_taken}")

            again = devstack_cli("up", "--root", root)
            assert again.returncode == 0, again.stderr
            assert "already running under" in again.stderr and "reusing it" in again.stderr
        finally:
            down = devstack_cli("down", "--root", root)
    assert down.returncode == 0, down.stderr
    assert "stopped minio" in down.stderr and "stopped mlflow" in down.stderr
    assert leftover_processes(Path(root)) == []
    assert devstack_cli("status", "--root", root).returncode == 3
    assert "nothing running" in devstack_cli("down", "--root", root).stderr
