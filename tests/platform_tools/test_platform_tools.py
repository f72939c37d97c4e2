"""`platform-tools` (images/platform-tools), the chart's bucket hook and helm test checks, run
as the pods run it: the console script in a subprocess, against the real MinIO and MLflow
servers of the local stack.

The Airflow API server is the one stand-in: `check-airflow` is pointed at a loopback HTTP
server that answers like /api/v2/monitor/health (the real API server is exercised by the
Airflow stack tests); the check's parsing and verdicts are what is tested here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from devstack.stack import Stack

TOOL = shutil.which("platform-tools") or str(Path(__file__).parents[2] / ".venv/bin/platform-tools")


def run_tool(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # nothing else leaks in
    return subprocess.run(
        [TOOL, *args], env={**base, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def object_store_env(stack: Stack, **overrides: str) -> dict[str, str]:
    wanted = (
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    )
    return {**{k: v for k, v in stack.env().items() if k in wanted}, **overrides}


def new_buckets(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"tools-{tag}-{i}" for i in range(n)]


# ------------------------------------------------------------------ buckets
def test_ensure_buckets_creates_the_missing_ones_and_is_idempotent(stack: Stack) -> None:
    s3 = stack.s3_client()
    existing, *missing = new_buckets(3)
    s3.create_bucket(Bucket=existing)
    env = object_store_env(stack)

    first = run_tool("ensure-buckets", existing, *missing, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"bucket {existing}: exists",
        *(f"bucket {b}: created" for b in missing),
    ]
    for bucket in missing:
        s3.head_bucket(Bucket=bucket)  # really there

    again = run_tool("ensure-buckets", existing, *missing, env=env)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [f"bucket {b}: exists" for b in (existing, *missing)]


def test_check_buckets_names_the_missing_ones(stack: Stack) -> None:
    present, absent = new_buckets(2)
    stack.s3_client().create_bucket(Bucket=present)
    env = object_store_env(stack)

    assert run_tool("check-buckets", present, env=env).stdout == f"bucket {present}: ok\n"
    failed = run_tool("check-buckets", present, absent, env=env)
    assert failed.returncode == 1
    assert (
        f"missing buckets ['{absent}']" in failed.stderr
        and "objectStore.createBuckets" in failed.stderr
    )


def test_wrong_credentials_are_refused_with_the_policy_named(stack: Stack) -> None:
    (bucket,) = new_buckets(1)
    env = object_store_env(stack, AWS_SECRET_ACCESS_KEY="not-the-secret-key")
    failed = run_tool("ensure-buckets", "--wait-seconds", "5", bucket, env=env)
    assert failed.returncode == 1
    assert f"bucket {bucket}: access denied" in failed.stderr
    assert "minio.policies" in failed.stderr


def test_an_unreachable_object_store_fails_after_the_wait_naming_the_endpoint(
    stack: Stack, unused_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{unused_port}"
    env = object_store_env(stack, AWS_ENDPOINT_URL=endpoint)
    failed = run_tool("ensure-buckets", "--wait-seconds", "1", "datasets", env=env)
    assert failed.returncode == 1
    assert f"the object store at {endpoint} did not answer within 1 s" in failed.stderr


# ------------------------------------------------------------------ MLflow
def test_check_mlflow_against_the_real_server(stack: Stack) -> None:
    ok = run_tool("check-mlflow", "--tracking-uri", stack.mlflow_uri, env={})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == f"GET {stack.mlflow_uri}/health -> OK"
    assert "experiments/search" in ok.stdout


def test_check_mlflow_with_credentials_requires_auth_to_be_on(stack: Stack) -> None:
    """Credentials against a server without basic auth: the anonymous call must not succeed."""
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "x" * 16}
    failed = run_tool("check-mlflow", "--tracking-uri", stack.mlflow_uri, env=env)
    assert failed.returncode == 1
    assert "without credentials -> 200, expected 401" in failed.stderr


def test_check_mlflow_names_an_unreachable_server(unused_port: int) -> None:
    failed = run_tool("check-mlflow", "--tracking-uri", f"http://127.0.0.1:{unused_port}", env={})
    assert failed.returncode == 1 and "not reachable" in failed.stderr


# ------------------------------------------------------------------ Airflow (stand-in API)
@pytest.fixture
def airflow_health() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback server answering /api/v2/monitor/health with `reply` (mutable per test)."""
    reply: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == "/api/v2/monitor/health" else 404
            body = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reply
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_check_airflow_passes_when_every_component_is_healthy(airflow_health) -> None:
    url, reply = airflow_health
    reply.update(
        metadatabase={"status": "healthy"},
        scheduler={"status": "healthy", "latest_scheduler_heartbeat": "2031-01-01T00:00:00Z"},
        triggerer={"status": "healthy"},
        dag_processor={"status": "healthy"},
    )
    ok = run_tool("check-airflow", "--url", url, env={})
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout.startswith(f"GET {url}/api/v2/monitor/health -> ") and '"scheduler"' in ok.stdout
    )


def test_check_airflow_names_the_unhealthy_component(airflow_health) -> None:
    url, reply = airflow_health
    reply.update(metadatabase={"status": "healthy"}, scheduler={"status": "unhealthy"})
    failed = run_tool("check-airflow", "--url", url, env={})
    assert failed.returncode == 1
    assert "unhealthy Airflow components: {'scheduler': 'unhealthy'}" in failed.stderr


def test_help_lists_every_command() -> None:
    out = run_tool("--help", env={}).stdout
    for command in ("ensure-buckets", "check-buckets", "check-mlflow", "check-airflow"):
        assert command in out
