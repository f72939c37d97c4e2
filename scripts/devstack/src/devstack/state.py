"""What a running stack leaves on disk: `<root>/stack.json` and `<root>/credentials.json`.

`stack.json` exists exactly while servers started by `devstack up` may be running (it is
written after each server starts, so `down` can clean up after an interrupted `up`).
`credentials.json` outlives `down`: MinIO's data folder keeps working with the same root
credentials across restarts. `RecordedState` is what every such state file holds (the
cluster harness's `cluster.json` too): the root and each started process group.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

from devstack.process import ProcessRef

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"
CREDENTIALS_FILE = "credentials.json"
REGION = "us-east-1"


@dataclass(frozen=True)
class Credentials:
    """MinIO root credentials; the same pair is the S3 access key for every local client."""

    access_key: str
    secret_key: str


@dataclass(frozen=True)
class ServerState:
    """One started server: its process group, ports, health URL and log."""

    pid: int
    started_at: float | None
    port: int
    health_url: str
    log: str
    extra_ports: dict[str, int] = field(default_factory=dict)
    health_component: str | None = None

    @property
    def ref(self) -> ProcessRef:
        return ProcessRef(pid=self.pid, started_at=self.started_at)


@dataclass(kw_only=True)
class RecordedState:
    """A state file's content: the root and each started server; subclasses add fields."""

    root: str
    servers: dict[str, ServerState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Self:
        raw = json.loads(text)
        raw["servers"] = {name: ServerState(**server) for name, server in raw["servers"].items()}
        return cls(**cls._decode_fields(raw))

    @classmethod
    def _decode_fields(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments from the parsed JSON (override for nested objects)."""
        return raw

    @classmethod
    def load(cls, path: Path) -> Self | None:
        """The state recorded in `path`; None when there is none."""
        return cls.from_json(path.read_text()) if path.is_file() else None

    def save(self, path: Path) -> None:
        """Replace `path` atomically, readable only by the owner (it may hold credentials)."""
        write_private(path, self.to_json())


@dataclass(kw_only=True)
class StackState(RecordedState):
    """Everything `stack.json` records."""

    credentials: Credentials
    buckets: dict[str, str]
    region: str = REGION

    @classmethod
    def _decode_fields(cls, raw: dict[str, Any]) -> dict[str, Any]:
        return raw | {"credentials": Credentials(**raw["credentials"])}


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable only by the owner (it holds credentials)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def load_or_create_credentials(root: Path) -> Credentials:
    """The root's MinIO credentials, generated (random) on first use and kept afterwards."""
    path = root / CREDENTIALS_FILE
    if path.is_file():
        return Credentials(**json.loads(path.read_text()))
    credentials = Credentials(
        access_key=f"devstack-{secrets.token_hex(4)}", secret_key=secrets.token_urlsafe(24)
    )
    root.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(asdict(credentials), indent=2) + "\n")
    log.debug("generated MinIO root credentials in %s", path)
    return credentials
