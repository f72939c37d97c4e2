"""A read-through cache of object-store objects on a folder, keyed by URI and ETag.

In a cluster with the optional shared volume (chart value `sharedVolume.enabled`) the pod
tasks of the training namespace get `ML_TRAINER_CACHE_DIR=<mountPath>/cache`: the trials of
one sweep, running in parallel on several GPU nodes, then read the day's processed split from
the ReadWriteMany volume instead of each downloading it again. `preprocess` (the task that
mounts the volume read-write) fills it as it writes; the others read what is there.

An entry is the object's bytes under `sha256(uri + ETag)`: every read asks the object store
for the current ETag first (a HEAD), so an object that changed is fetched again, never served
stale. Entries are written to a temporary file and renamed into place, so readers on other
nodes see whole files only. A cache that cannot be written (a read-only mount, a full disk)
is used for reading and otherwise ignored: it is an optimisation, never a source of truth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "ML_TRAINER_CACHE_DIR"


def cache_from_environment() -> ObjectCache | None:
    folder = os.environ.get(CACHE_DIR_ENV, "").strip()
    return ObjectCache(Path(folder)) if folder else None


class ObjectCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._writable = True

    def entry(self, uri: str, etag: str) -> Path:
        digest = hashlib.sha256(f"{uri}\n{etag}".encode()).hexdigest()
        return self.root / digest[:2] / digest

    def read(self, client: Any, bucket: str, key: str) -> bytes:
        """The object's bytes, from the cache when the stored ETag is the current one."""
        uri = f"s3://{bucket}/{key}"
        etag = client.head_object(Bucket=bucket, Key=key)["ETag"]
        path = self.entry(uri, etag)
        if path.is_file():
            log.debug("cache hit %s (%s)", uri, path)
            return path.read_bytes()
        response = client.get_object(Bucket=bucket, Key=key)
        data = response["Body"].read()
        self.store(uri, response["ETag"], data)  # the ETag of the bytes actually read
        return data

    def store(self, uri: str, etag: str, data: bytes) -> None:
        """Keep `data` as the object `uri` at `etag` (best effort)."""
        if not self._writable:
            return
        path = self.entry(uri, etag)
        partial: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                partial = Path(tmp.name)
                tmp.write(data)
            partial.replace(path)
        except OSError as exc:
            if partial is not None:
                partial.unlink(missing_ok=True)
            self._writable = False
            log.info("object cache %s is not writable (%s): reading only", self.root, exc)
