"""Bad input and faults: taken ports, missing binaries, a crashing server, a half-up stack,
Ctrl-C during `up`, and `down` with nothing to stop. Each uses its own root."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from devstack.errors import ServerStartError, StackConflictError, ToolMissingError
from devstack.minio_server import find_minio_binary, minio_spec
from devstack.ports import HOST, choose_port, ephemeral_port
from devstack.process import ProcessRef, process_started_at, spawn, stop_group, wait_until_healthy
from devstack.stack import HOLD_AFTER_SPAWN_ENV, Stack
from devstack.state import STATE_FILE, Credentials, ServerState, StackState

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def test_taken_port_is_replaced_by_a_free_one_that_minio_serves_and_the_choice_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as blocker:
        blocker.bind((HOST, 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with caplog.at_level("WARNING", logger="devstack"):
            port = choose_port("minio", taken)
        assert port != taken
        assert f"minio: port {taken} on {HOST} is taken; using port {port} instead" in caplog.text

        console = choose_port("minio-console", None, avoid={port, taken})
        spec = minio_spec(
            find_minio_binary(), tmp_path, port, console, Credentials("devstack-t", "secret-key-1")
        )
        ref = spawn(spec)
        try:
            wait_until_healthy(spec, ref, timeout=60)
        finally:
            stop_group("minio", ref)
        assert not ref.is_alive()


def test_missing_minio_binary_is_a_one_line_error_naming_make_tools(
    tmp_path: Path, devstack_cli: CliRunner, clean_env: dict[str, str]
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    env = clean_env | {"PATH": str(Path(sys.executable).parent)}  # the venv has no minio
    result = devstack_cli(
        "up", "--root", str(tmp_path / "root"), "--tools-dir", str(empty), env=env
    )
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1, result.stderr
    assert "MinIO" in errors[0] and "`make tools`" in errors[0]
    assert not (tmp_path / "root" / "stack.json").exists()


def test_missing_mlflow_executable_is_a_one_line_error_naming_make_tools(tmp_path: Path) -> None:
    no_bin = tmp_path / "no-bin"
    no_bin.mkdir()
    with pytest.raises(ToolMissingError) as raised:
        Stack(tmp_path / "root", bin_dir=no_bin, minio_port=None, mlflow_port=None).up()
    message = str(raised.value)
    assert "\n" not in message and "MLflow" in message and "make tools" in message
    assert not (tmp_path / "root" / "logs").exists(), "nothing may start before the check"


def test_server_exiting_during_start_up_reports_its_log_tail_and_log_path(
    stack_root: Path,
) -> None:
    root = stack_root
    root.mkdir()
    # MinIO refuses a root password shorter than 8 characters and exits at once.
    (root / "credentials.json").write_text(
        json.dumps({"access_key": "devstack-t", "secret_key": "short"})
    )
    stack = Stack(root, minio_port=None, minio_console_port=None, mlflow_port=None)
    with pytest.raises(ServerStartError) as raised:
        stack.up()
    message = str(raised.value)
    log_path = root / "logs" / "minio.log"
    assert "minio exited during start-up" in message
    assert str(log_path) in message
    assert "MINIO_ROOT_PASSWORD length at least 8" in message  # a line from the log tail
    assert not (root / "stack.json").exists()


def test_up_refuses_a_partly_running_stack_and_down_stops_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    # A recorded "minio" that is alive but never answers its health check; no mlflow.
    stuck = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        dead_port = ephemeral_port()
        state = StackState(
            root=str(root), credentials=Credentials("devstack-t", "secret-key-1"), buckets={}
        )
        state.servers["minio"] = ServerState(
            pid=stuck.pid,
            started_at=process_started_at(stuck.pid),
            port=dead_port,
            health_url=f"http://{HOST}:{dead_port}/minio/health/live",
            log=str(root / "logs" / "minio.log"),
        )
        state.save(root / STATE_FILE)

        with pytest.raises(StackConflictError) as raised:
            Stack(root, minio_port=None, minio_console_port=None, mlflow_port=None).up()
        assert "`devstack down" in str(raised.value)
        assert "minio running but unhealthy" in str(raised.value)

        assert Stack(root).down() is True
        # down() reaps the process itself, so Popen cannot see the signal: check it is gone.
        assert not state.servers["minio"].ref.is_alive()
        assert not (root / "stack.json").exists()
    finally:
        if stuck.poll() is None:
            stuck.kill()
            stuck.wait()


def test_down_with_nothing_running_is_a_no_op(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, devstack_cli: CliRunner
) -> None:
    with caplog.at_level("INFO", logger="devstack"):
        assert Stack(tmp_path / "never-started").down() is False
    assert "nothing running" in caplog.text
    assert not (tmp_path / "never-started").exists()

    result = devstack_cli("down", "--root", str(tmp_path / "never-started"))
    assert result.returncode == 0
    assert "nothing running" in result.stderr


def _interrupt_up_after_spawning(
    server: str, root: Path, env: dict[str, str], *extra_args: str
) -> tuple[subprocess.Popen[str], dict[str, dict], str]:
    """Run `devstack up`, held by the test hook right after it spawned `server`; send SIGINT
    once `server` is recorded (it cannot finish starting first); return what was recorded."""
    devstack = Path(sys.executable).parent / "devstack"
    up = subprocess.Popen(
        [
            str(devstack), "up", "--root", str(root),
            "--minio-port", "0", "--minio-console-port", "0", "--mlflow-port", "0", *extra_args,
        ],
        env=env | {HOLD_AFTER_SPAWN_ENV: server},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        state_file = root / "stack.json"
        deadline = time.monotonic() + 600  # a busy 2-core machine: generous, never hit normally
        while time.monotonic() < deadline and up.poll() is None:
            if state_file.is_file() and server in json.loads(state_file.read_text())["servers"]:
                break
            time.sleep(0.05)
        assert up.poll() is None, f"`devstack up` ended before holding: {up.communicate()}"
        recorded = json.loads(state_file.read_text())["servers"]
        up.send_signal(signal.SIGINT)
        _, stderr = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    return up, recorded, stderr


@pytest.mark.slow
def test_ctrl_c_during_up_stops_everything_that_was_started(
    stack_root: Path,
    clean_env: dict[str, str],
    leftover_processes: Callable[[Path], list[str]],
) -> None:
    # Held after MLflow is spawned: MinIO is up, MLflow and the DB migration are busy.
    up, recorded, stderr = _interrupt_up_after_spawning("mlflow", stack_root, clean_env)
    assert up.returncode == 130, stderr
    assert "holds here until interrupted (test hook)" in stderr
    assert "interrupted" in stderr
    assert set(recorded) == {"minio", "mlflow"}
    for name, server in recorded.items():
        assert not ProcessRef(server["pid"], server["started_at"]).is_alive(), name
    assert leftover_processes(stack_root) == []
    assert not (stack_root / "stack.json").exists()


@pytest.mark.slow
def test_ctrl_c_during_airflow_start_up_stops_the_airflow_components_too(
    stack_root: Path,
    clean_env: dict[str, str],
    leftover_processes: Callable[[Path], list[str]],
) -> None:
    # Held after the scheduler is spawned: the api-server is up, the scheduler starting.
    up, recorded, stderr = _interrupt_up_after_spawning(
        "airflow-scheduler", stack_root, clean_env, "--airflow", "--airflow-port", "0"
    )
    assert up.returncode == 130, stderr
    assert set(recorded) == {"minio", "mlflow", "airflow-api-server", "airflow-scheduler"}
    for name, server in recorded.items():
        assert not ProcessRef(server["pid"], server["started_at"]).is_alive(), name
    assert leftover_processes(stack_root) == []
    assert not (stack_root / "stack.json").exists()
