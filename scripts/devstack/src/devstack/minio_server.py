"""The MinIO server: where its binary is, how it is started, and a client for it.

Its buckets are created by `platform_tools.buckets.ensure_buckets`, the chart's bucket hook.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devstack.errors import ToolMissingError
from devstack.paths import is_executable, tools_bin
from devstack.ports import HOST
from devstack.process import ServerSpec
from devstack.state import REGION, Credentials

log = logging.getLogger(__name__)

NAME = "minio"


def find_minio_binary(tools_dir: Path | None = None, search_path: str | None = None) -> Path:
    """`<tools_dir>/minio` (default `.tools/bin`), else `minio` on PATH, else a one-line error."""
    tools_dir = tools_dir or tools_bin()
    candidate = tools_dir / "minio"
    if is_executable(candidate):
        return candidate
    found = shutil.which("minio", path=search_path if search_path is not None else None)
    if found:
        return Path(found)
    raise ToolMissingError(
        f"MinIO server binary not found in {tools_dir} or on PATH; run `make tools` to build it"
    )


def minio_spec(
    binary: Path, root: Path, port: int, console_port: int, credentials: Credentials
) -> ServerSpec:
    """MinIO on `127.0.0.1:port` (console on `console_port`), data under `<root>/minio`."""
    data_dir = root / "minio"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIO_", "AWS_", "DEVSTACK_"))}
    env |= {
        "MINIO_ROOT_USER": credentials.access_key,
        "MINIO_ROOT_PASSWORD": credentials.secret_key,
        "MINIO_UPDATE": "off",
        "MINIO_REGION": REGION,
        "DEVSTACK_ROOT": str(root),  # marks the process as this root's (for debugging)
    }
    argv = [
        str(binary),
        "server",
        "--address",
        f"{HOST}:{port}",
        "--console-address",
        f"{HOST}:{console_port}",
        "--certs-dir",
        str(root / "minio-certs"),
        str(data_dir),
    ]
    return ServerSpec(
        name=NAME,
        argv=argv,
        env=env,
        log_path=root / "logs" / f"{NAME}.log",
        health_url=f"http://{HOST}:{port}/minio/health/live",
    )


def s3_client(endpoint_url: str, credentials: Credentials, region: str = REGION) -> Any:
    """A boto3 S3 client for the local MinIO (path-style addressing)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
