"""The MLflow tracking server: SQLite backend, artifacts proxied to the MinIO `mlflow` bucket.

Clients talk only to the server (`mlflow-artifacts:/` URIs); the server alone holds the S3
credentials and writes artifacts to `s3://<mlflow bucket>/artifacts/...`.
"""

from __future__ import annotations

import os
from pathlib import Path

from devstack.paths import venv_executable
from devstack.ports import HOST
from devstack.process import ServerSpec
from devstack.state import REGION, Credentials

NAME = "mlflow"
ARTIFACTS_PREFIX = "artifacts"


def find_mlflow_executable(bin_dir: Path | None = None) -> Path:
    """`mlflow` from the running interpreter's environment, else a one-line error."""
    return venv_executable("mlflow", "MLflow server executable", bin_dir)


def tracking_uri(port: int) -> str:
    return f"http://{HOST}:{port}"


def mlflow_spec(
    executable: Path,
    root: Path,
    port: int,
    artifacts_bucket: str,
    s3_endpoint: str,
    credentials: Credentials,
) -> ServerSpec:
    """`mlflow server` on `127.0.0.1:port` with one worker (the reference machine has 2 cores)."""
    store_dir = root / "mlflow"
    store_dir.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AWS_", "AIRFLOW", "DEVSTACK_"))
    }
    env |= {
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        # The job runner (GenAI jobs) forks ~8 extra Python processes (~2 GB) and triples
        # start-up time; the training pipeline does not use it.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "DEVSTACK_ROOT": str(root),  # marks the process as this root's (for debugging)
    }
    # MLflow >= 3.5 rejects Host headers it does not know: list every name clients use.
    allowed_hosts = [f"{HOST}:{port}", f"localhost:{port}", HOST, "localhost"]
    argv = [
        str(executable),
        "server",
        "--backend-store-uri",
        f"sqlite:///{store_dir / 'mlflow.db'}",
        "--artifacts-destination",
        f"s3://{artifacts_bucket}/{ARTIFACTS_PREFIX}",
        "--serve-artifacts",
        "--host",
        HOST,
        "--port",
        str(port),
        "--allowed-hosts",
        ",".join(allowed_hosts),
        "--workers",
        "1",
    ]
    return ServerSpec(
        name=NAME,
        argv=argv,
        env=env,
        log_path=root / "logs" / f"{NAME}.log",
        health_url=f"{tracking_uri(port)}/health",
        cwd=store_dir,
    )
