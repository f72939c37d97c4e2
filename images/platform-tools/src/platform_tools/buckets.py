"""Buckets of the platform: create what is missing (the chart's hook), check that all exist.

Works against MinIO and any S3 with the platform's own least-privilege credentials: it only
calls HeadBucket and CreateBucket on the buckets it is given (no ListBuckets, which the
platform's MinIO policy does not grant). The functions take any boto3 S3 client and use its
endpoint and region; the local stack (devstack) creates its buckets with them too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from platform_tools.errors import CheckFailed

log = logging.getLogger(__name__)

NOT_FOUND = {"404", "NoSuchBucket", "NotFound"}
FORBIDDEN = {"403", "AccessDenied", "Forbidden"}


def endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_client() -> Any:
    """A boto3 S3 client for the environment (path-style addressing for MinIO endpoints)."""
    import boto3
    from botocore.config import Config

    url = endpoint()
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if url else None,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=url, region_name=region(), config=config
    )


def _where(client: Any) -> str:
    return str(client.meta.endpoint_url)


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def bucket_exists(client: Any, bucket: str) -> bool:
    """HeadBucket: True, False when it does not exist; a refusal raises with the fix."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if _code(exc) in NOT_FOUND:
            return False
        if _code(exc) in FORBIDDEN:
            raise CheckFailed(
                f"bucket {bucket}: access denied at {_where(client)}. The platform's "
                "credentials must be allowed s3:ListBucket and s3:CreateBucket on it (MinIO: the "
                "platform user's policy in minio.policies; AWS: the IAM policy of the keys or role)."
            ) from exc
        raise


def wait_until_reachable(
    client: Any, bucket: str, wait_seconds: float, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Until the object store answers at all (MinIO may still be starting when the hook runs)."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if _status(exc) < 500:
                return  # it answers; 404/403 are for the caller to handle
            problem: Exception = exc
        except BotoCoreError as exc:
            problem = exc
        if time.monotonic() >= deadline:
            raise CheckFailed(
                f"the object store at {_where(client)} did not answer within "
                f"{wait_seconds:.0f} s ({problem}). Check AWS_ENDPOINT_URL and that MinIO (or "
                "your S3) is running and reachable from this namespace (NetworkPolicies)."
            )
        log.info("waiting for the object store: %s", problem)
        sleep(5)


def create_bucket(client: Any, bucket: str) -> str:
    """Create `bucket` in the client's region; 'created' or 'exists' (a race with another)."""
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {}
    if client.meta.region_name != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": client.meta.region_name}
    try:
        client.create_bucket(Bucket=bucket, **kwargs)
        return "created"
    except ClientError as exc:
        if _code(exc) == "BucketAlreadyOwnedByYou":
            return "exists"
        if _code(exc) == "BucketAlreadyExists":
            raise CheckFailed(
                f"bucket {bucket}: the name is taken by another account. Choose other names "
                "in objectStore.buckets (bucket names are global on AWS S3)."
            ) from exc
        if _code(exc) in FORBIDDEN:
            raise CheckFailed(
                f"bucket {bucket} does not exist and the platform's credentials may not create "
                "it (s3:CreateBucket). Create it yourself (Terraform) and set "
                "objectStore.createBuckets=false, or grant the permission."
            ) from exc
        raise


def ensure_buckets(client: Any, buckets: Sequence[str], wait_seconds: float) -> list[str]:
    """Create every missing bucket (idempotent); one report line per bucket."""
    if not buckets:
        raise CheckFailed("no bucket names given")
    wait_until_reachable(client, buckets[0], wait_seconds)
    return [
        f"bucket {b}: {'exists' if bucket_exists(client, b) else create_bucket(client, b)}"
        for b in buckets
    ]


def check_buckets(client: Any, buckets: Sequence[str]) -> list[str]:
    """One line per bucket; raises listing the missing ones."""
    missing = [b for b in buckets if not bucket_exists(client, b)]
    if missing:
        raise CheckFailed(
            f"missing buckets {missing} at {_where(client)}: the bucket hook "
            "(objectStore.createBuckets) creates them on install and upgrade, or create them yourself."
        )
    return [f"bucket {b}: ok" for b in buckets]
