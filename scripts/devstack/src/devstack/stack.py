"""`Stack`: the embedded local stack (MinIO + MLflow server + an Airflow home) under one root.

    with Stack(root) as stack:           # up() on enter, down() on exit (if it started it)
        subprocess.run(cmd, env=os.environ | stack.env())
        stack.s3_client().list_buckets()

`Stack(root)` on a root where `devstack up` already runs a healthy stack reuses it: `env()`,
`s3_client()` and the endpoints work without calling `up()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from devstack import airflow_home as airflow
from devstack import minio_server, mlflow_server
from devstack.errors import DevstackError, StackConflictError
from devstack.paths import default_root, repo_root
from devstack.platform_names import PlatformNames, load_platform_names
from devstack.ports import HOST, choose_port
from devstack.process import OneShot, ServerSpec, is_healthy, spawn, stop_group, wait_until_healthy
from devstack.state import (
    STATE_FILE,
    Credentials,
    ServerState,
    StackState,
    load_or_create_credentials,
    load_state,
    remove_state,
    save_state,
)

log = logging.getLogger(__name__)

SERVERS = (minio_server.NAME, mlflow_server.NAME)
DEFAULT_MINIO_PORT = 9000
DEFAULT_MINIO_CONSOLE_PORT = 9001
DEFAULT_MLFLOW_PORT = 5000


@dataclass(frozen=True)
class ServerStatus:
    """What `status` reports for one server."""

    name: str
    pid: int
    url: str
    alive: bool
    healthy: bool
    log: str


class Stack:
    """The local stack under `root` (default `<repo>/.local`).

    Ports are preferences: a taken port is replaced by a free one (logged). Pass `None` for
    any free port (what the tests do, so they never collide with a developer's stack).
    """

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        minio_port: int | None = DEFAULT_MINIO_PORT,
        minio_console_port: int | None = DEFAULT_MINIO_CONSOLE_PORT,
        mlflow_port: int | None = DEFAULT_MLFLOW_PORT,
        tools_dir: Path | None = None,
        bin_dir: Path | None = None,
        names: PlatformNames | None = None,
        start_timeout: float = 180.0,
        migrate_timeout: float = 600.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else default_root()
        self.preferred_ports = {
            "minio": minio_port,
            "minio-console": minio_console_port,
            "mlflow": mlflow_port,
        }
        self.tools_dir = tools_dir
        self.bin_dir = bin_dir
        self.names = names or load_platform_names()
        self.start_timeout = start_timeout
        self.migrate_timeout = migrate_timeout
        self.stop_timeout = stop_timeout
        self.reused = False
        # Seconds each step of the last `up()` took: minio, mlflow, airflow_db_migrate, up.
        self.timings: dict[str, float] = {}
        self._state: StackState | None = None

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> Stack:
        """Start MinIO and MLflow, create the buckets, migrate the Airflow DB (once per root).

        Reuses a healthy stack already running under the root (`self.reused` is then True);
        refuses (StackConflictError) when the root holds a partly running one. On any error
        or interruption, every process this call started is stopped before it propagates.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            existing = load_state(self.root)
            if existing is not None and self._adopt_or_clear(existing):
                self._ensure_migrated()
                return self
            self._start_fresh()
        return self

    def down(self) -> bool:
        """Stop every server recorded under the root; False (and a message) if none was."""
        if not (self.root / STATE_FILE).is_file():
            log.info("nothing running under %s", self.root)
            return False
        with self._lock():
            state = load_state(self.root)
            if state is None:
                log.info("nothing running under %s", self.root)
                return False
            self._stop_servers(state)
            remove_state(self.root)
            self._state = None
            self.reused = False
        log.info("stack under %s is down", self.root)
        return True

    def __enter__(self) -> Stack:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.reused:
            self.down()

    # ------------------------------------------------------------------ inspection
    @property
    def state(self) -> StackState:
        if self._state is None:
            self._state = load_state(self.root)
        if self._state is None:
            raise DevstackError(
                f"no local stack is running under {self.root}; start it with `devstack up`"
            )
        return self._state

    def is_running(self) -> bool:
        """True when every server is recorded and answers its health check."""
        statuses = self.status()
        return {s.name for s in statuses} == set(SERVERS) and all(s.healthy for s in statuses)

    def status(self) -> list[ServerStatus]:
        """Each recorded server with liveness and health (empty when nothing is recorded)."""
        state = load_state(self.root)
        if state is None:
            return []
        return [
            ServerStatus(
                name=name,
                pid=server.pid,
                url=f"http://{HOST}:{server.port}",
                alive=server.ref.is_alive(),
                healthy=is_healthy(server.health_url),
                log=server.log,
            )
            for name, server in state.servers.items()
        ]

    @property
    def credentials(self) -> Credentials:
        return self.state.credentials

    @property
    def region(self) -> str:
        return self.state.region

    @property
    def buckets(self) -> dict[str, str]:
        """Bucket names by role (`datasets`, `processed`, `mlflow`, `xcom`, `logs`)."""
        return dict(self.state.buckets)

    @property
    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self._server(minio_server.NAME).port}"

    @property
    def console_url(self) -> str:
        console = self._server(minio_server.NAME).extra_ports["console"]
        return f"http://{HOST}:{console}"

    @property
    def mlflow_uri(self) -> str:
        return mlflow_server.tracking_uri(self._server(mlflow_server.NAME).port)

    @property
    def airflow_home(self) -> Path:
        return airflow.airflow_home(self.root)

    def s3_client(self) -> Any:
        """A boto3 S3 client with the stack's endpoint and credentials."""
        return minio_server.s3_client(self.s3_endpoint, self.credentials, self.region)

    def env(self) -> dict[str, str]:
        """The environment a shell or subprocess needs (docs/CONTRACTS.md section 5)."""
        return stack_env(
            self.root,
            self.state,
            self._server(minio_server.NAME).port,
            self._server(mlflow_server.NAME).port,
        )

    # ------------------------------------------------------------------ internals
    def _server(self, name: str) -> ServerState:
        try:
            return self.state.servers[name]
        except KeyError:
            raise DevstackError(
                f"{name} is not recorded in {self.root / STATE_FILE}; "
                "run `devstack down` then `devstack up`"
            ) from None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise up/down on one root (two `up`s at once would race for the ports)."""
        with (self.root / ".devstack.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _adopt_or_clear(self, existing: StackState) -> bool:
        """True when `existing` is healthy and now adopted; clears stale state; else refuses."""
        statuses = {
            name: (server.ref.is_alive(), is_healthy(server.health_url))
            for name, server in existing.servers.items()
        }
        if set(statuses) == set(SERVERS) and all(healthy for _, healthy in statuses.values()):
            self._state = existing
            self.reused = True
            log.info("a healthy stack is already running under %s; reusing it", self.root)
            return True
        if not any(alive for alive, _ in statuses.values()):
            log.info("removing stale state of a stack that is no longer running")
            remove_state(self.root)
            return False
        described = ", ".join(
            f"{name} {'healthy' if healthy else 'running but unhealthy' if alive else 'stopped'}"
            for name, (alive, healthy) in statuses.items()
        )
        missing = sorted(set(SERVERS) - set(statuses))
        if missing:
            described += f", {', '.join(missing)} never started"
        raise StackConflictError(
            f"a partly running stack is recorded under {self.root} ({described}); "
            f"stop it with `devstack down --root {self.root}` and run `devstack up` again"
        )

    def _start_fresh(self) -> None:
        minio_binary = minio_server.find_minio_binary(self.tools_dir)
        mlflow_executable = mlflow_server.find_mlflow_executable(self.bin_dir)
        airflow_executable = airflow.find_airflow_executable(self.bin_dir)
        credentials = load_or_create_credentials(self.root)
        state = StackState(
            root=str(self.root), credentials=credentials, buckets=dict(self.names.buckets)
        )
        taken: set[int] = set()
        ports = {}
        for name, preferred in self.preferred_ports.items():
            ports[name] = choose_port(name, preferred, avoid=taken)
            taken.add(ports[name])

        started_at = time.monotonic()
        self.timings = {}
        migration: OneShot | None = None
        self._state = state
        try:
            minio = minio_server.minio_spec(
                minio_binary, self.root, ports["minio"], ports["minio-console"], credentials
            )
            self._start_server(state, minio, ports["minio"], {"console": ports["minio-console"]})
            minio_server.ensure_buckets(self.s3_client(), list(state.buckets.values()))
            if not airflow.is_migrated(self.root):
                # Runs while MLflow starts: both mostly wait on imports and SQLite.
                log.info("migrating the Airflow metadata DB (first `up` of this root)")
                env = stack_env(self.root, state, ports["minio"], ports["mlflow"])
                migration = airflow.start_migration(self.root, airflow_executable, env)
            mlflow = mlflow_server.mlflow_spec(
                mlflow_executable,
                self.root,
                ports["mlflow"],
                state.buckets["mlflow"],
                self.s3_endpoint,
                credentials,
            )
            self._start_server(state, mlflow, ports["mlflow"])
            if migration is not None:
                migration.wait(self.migrate_timeout)
                airflow.mark_migrated(self.root)
                self.timings["airflow_db_migrate"] = migration.duration or 0.0
                log.info("airflow db migrate took %.1fs", self.timings["airflow_db_migrate"])
                migration = None
        except BaseException:
            log.error("start-up failed or was interrupted; stopping what was started")
            with _ctrl_c_deferred():  # a second Ctrl-C must not leave servers behind
                if migration is not None:
                    migration.stop()
                self._stop_servers(state)
                remove_state(self.root)
            self._state = None
            raise
        self.timings["up"] = time.monotonic() - started_at
        log.info(
            "stack up in %.1fs: S3 %s, MLflow %s, Airflow home %s",
            self.timings["up"],
            self.s3_endpoint,
            self.mlflow_uri,
            self.airflow_home,
        )

    def _start_server(
        self,
        state: StackState,
        spec: ServerSpec,
        port: int,
        extra_ports: dict[str, int] | None = None,
    ) -> None:
        log.info("starting %s on %s:%d (log %s)", spec.name, HOST, port, spec.log_path)
        started_at = time.monotonic()
        ref = spawn(spec)
        state.servers[spec.name] = ServerState(
            pid=ref.pid,
            start_ticks=ref.start_ticks,
            port=port,
            health_url=spec.health_url,
            log=str(spec.log_path),
            extra_ports=extra_ports or {},
        )
        save_state(self.root, state)
        wait_until_healthy(spec, ref, self.start_timeout)
        self.timings[spec.name] = time.monotonic() - started_at

    def _ensure_migrated(self) -> None:
        if airflow.is_migrated(self.root):
            return
        log.info("the Airflow metadata DB of this root is not migrated yet; migrating")
        executable = airflow.find_airflow_executable(self.bin_dir)
        migration = airflow.start_migration(self.root, executable, self.env())
        try:
            migration.wait(self.migrate_timeout)
        except BaseException:
            migration.stop()
            raise
        airflow.mark_migrated(self.root)

    def _stop_servers(self, state: StackState) -> None:
        for name, server in reversed(state.servers.items()):
            stop_group(name, server.ref, timeout=self.stop_timeout)


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Ignore SIGINT while cleaning up (only the main thread may change signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stack_env(root: Path, state: StackState, s3_port: int, mlflow_port: int) -> dict[str, str]:
    """The stack's client environment, from its state and the two server ports."""
    s3_endpoint = f"http://{HOST}:{s3_port}"
    return {
        "DEVSTACK_ROOT": str(root),
        "MLFLOW_TRACKING_URI": mlflow_server.tracking_uri(mlflow_port),
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": state.credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": state.credentials.secret_key,
        "AWS_DEFAULT_REGION": state.region,
        **airflow.airflow_env(
            root,
            repo_root() / "dags",
            s3_endpoint,
            state.credentials,
            state.region,
            state.buckets["xcom"],
        ),
        "ML_PIPELINE_RUNTIME": "local",
    }
