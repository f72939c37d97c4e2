"""Object storage by `s3://bucket/key` URI (boto3; honours AWS_ENDPOINT_URL for MinIO).

Every failure is turned into a `TrainerError` that names the URI or the endpoint, so a
pod log says "s3://datasets/daily/2026-01-01/features.parquet does not exist at
http://minio:9000" rather than a botocore traceback. With `ML_TRAINER_CACHE_DIR` set, reads
go through a cache on that folder and writes fill it (`ml_trainer.object_cache`).
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ml_trainer.errors import TrainerError
from ml_trainer.object_cache import ObjectCache, cache_from_environment

log = logging.getLogger(__name__)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}


@dataclass(frozen=True)
class S3Uri:
    """`s3://bucket/key`; a key ending in "/" (or empty) is a prefix."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        scheme, sep, rest = uri.partition("://")
        bucket, _, key = rest.partition("/")
        if scheme != "s3" or not sep or not bucket:
            raise TrainerError(
                f"{uri!r} is not an object-storage URI.",
                "pass a full URI of the form s3://bucket/key (bucket names are never implied).",
            )
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_prefix(self) -> S3Uri:
        return (
            self if not self.key or self.key.endswith("/") else S3Uri(self.bucket, self.key + "/")
        )

    def join(self, name: str) -> S3Uri:
        """The object `name` inside this prefix."""
        return S3Uri(self.bucket, self.as_prefix().key + name)

    def sibling(self, name: str) -> S3Uri:
        """The object `name` in the same folder as this object."""
        folder = self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""
        return S3Uri(self.bucket, folder + name)


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _describe_endpoint() -> str:
    return endpoint_url() or "AWS S3 (AWS_ENDPOINT_URL unset)"


def parse_parquet(uri: S3Uri, data: bytes) -> pd.DataFrame:
    """Parquet bytes -> DataFrame, with a readable error for a damaged file."""
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise TrainerError(
            f"{uri} is not a readable parquet file ({type(exc).__name__}: {exc}).",
            "the file is corrupt or truncated: regenerate it upstream "
            "(e.g. `trainer generate-data`) and rerun.",
        ) from exc


class ObjectStore:
    """Small typed facade over a boto3 S3 client."""

    def __init__(self, client: Any | None = None, cache: ObjectCache | None = None) -> None:
        self._client = client
        self.cache = cache if cache is not None else cache_from_environment()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            endpoint = endpoint_url()
            config = Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                # MinIO and most S3-compatible stores want path-style addressing.
                s3={"addressing_style": "path"} if endpoint else None,
            )
            # a fresh session reads the credentials from the environment now (boto3's default
            # session caches the first ones it saw for the life of the process)
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                config=config,
            )
        return self._client

    # ------------------------------------------------------------------ errors
    def _translate(self, exc: Exception, uri: S3Uri, action: str, missing_fix: str) -> TrainerError:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectTimeoutError as BotoConnectTimeout

        endpoint = _describe_endpoint()
        if isinstance(exc, EndpointConnectionError | BotoConnectTimeout | ConnectionClosedError):
            return TrainerError(
                f"Cannot reach the object store at {endpoint} to {action} {uri}.",
                "check AWS_ENDPOINT_URL and that the object store (MinIO) is running and reachable.",
            )
        if isinstance(exc, ReadTimeoutError):
            return TrainerError(
                f"The object store at {endpoint} timed out while trying to {action} {uri}.",
                "check the object store's health and retry.",
            )
        if isinstance(exc, NoCredentialsError):
            return TrainerError(
                f"No object-store credentials found to {action} {uri}.",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
            )
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                return TrainerError(
                    f"Bucket {uri.bucket!r} does not exist at {endpoint} (needed to {action} {uri}).",
                    "create the bucket (the chart's bucket bootstrap job or `devstack up` does) or fix the URI.",
                )
            if code in _NOT_FOUND:
                return TrainerError(f"{uri} does not exist at {endpoint}.", missing_fix)
            if code in _CREDENTIALS:
                return TrainerError(
                    f"The object store at {endpoint} refused to {action} {uri} ({code}).",
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy.",
                )
            return TrainerError(
                f"The object store at {endpoint} failed to {action} {uri}: {code or exc}.",
                "check the object store's logs and retry.",
            )
        return TrainerError(
            f"Could not {action} {uri} at {endpoint}: {exc}.", "retry; check the object store."
        )

    # ------------------------------------------------------------------ bytes
    def read_bytes(self, uri: S3Uri, missing_fix: str = "check the URI.") -> bytes:
        try:
            if self.cache is not None:
                return self.cache.read(self.client, uri.bucket, uri.key)
            response = self.client.get_object(Bucket=uri.bucket, Key=uri.key)
            return response["Body"].read()
        except Exception as exc:
            raise self._translate(exc, uri, "read", missing_fix) from exc

    def write_bytes(
        self, uri: S3Uri, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        try:
            response = self.client.put_object(
                Bucket=uri.bucket, Key=uri.key, Body=data, ContentType=content_type
            )
        except Exception as exc:
            raise self._translate(exc, uri, "write", "create the bucket or fix the URI.") from exc
        if self.cache is not None:
            self.cache.store(str(uri), response["ETag"], data)
        # tests/dags/fault_wrapper.py waits for this line with ".../last.pt" to kill a trainer
        log.info("wrote %s (%d bytes)", uri, len(data))

    def exists(self, uri: S3Uri) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=uri.bucket, Key=uri.key)
            return True
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                return False
            raise self._translate(exc, uri, "look up", "check the URI.") from exc
        except Exception as exc:
            raise self._translate(exc, uri, "look up", "check the URI.") from exc

    # ------------------------------------------------------------------ typed helpers
    def read_parquet(self, uri: S3Uri, missing_fix: str = "check the URI.") -> pd.DataFrame:
        return parse_parquet(uri, self.read_bytes(uri, missing_fix))

    def write_parquet(self, uri: S3Uri, frame: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        self.write_bytes(uri, buffer.getvalue(), "application/vnd.apache.parquet")

    def read_json(self, uri: S3Uri, missing_fix: str = "check the URI.") -> Any:
        data = self.read_bytes(uri, missing_fix)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise TrainerError(f"{uri} is not valid JSON ({exc}).", "regenerate it.") from exc

    def write_json(self, uri: S3Uri, payload: Any) -> None:
        text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
        self.write_bytes(uri, text.encode(), "application/json")
