"""`Stack`: the embedded local stack (MinIO + MLflow server + an Airflow home) under one root.

    with Stack(root) as stack:           # up() on enter, down() on exit (if it started it)
        subprocess.run(cmd, env=os.environ | stack.env())
        stack.s3_client().list_buckets()

`Stack(root, airflow=True)` also runs a real Airflow (api-server, scheduler, dag-processor,
triggerer; `devstack.airflow_servers`) on the same servers and metadata DB.

`Stack(root)` on a root where `devstack up` already runs a healthy stack reuses it: `env()`,
`s3_client()` and the endpoints work without calling `up()`.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_tools.buckets import ensure_buckets
from platform_tools.errors import CheckFailed

from devstack import airflow_home as airflow
from devstack import airflow_servers, minio_server, mlflow_server
from devstack.airflow_api import AirflowApi
from devstack.errors import DevstackError
from devstack.interrupts import ctrl_c_deferred
from devstack.paths import default_root, repo_root
from devstack.platform_names import PlatformNames, load_platform_names
from devstack.ports import HOST, choose_port
from devstack.process import (
    OneShot,
    ProcessRef,
    ServerSpec,
    is_healthy,
    stop_group,
    wait_until_healthy,
)
from devstack.state import (
    STATE_FILE,
    Credentials,
    ServerState,
    StackState,
    load_or_create_credentials,
)
from devstack.supervisor import Supervisor

log = logging.getLogger(__name__)

SERVERS = (minio_server.NAME, mlflow_server.NAME)
AIRFLOW_SERVERS = airflow_servers.COMPONENTS
DEFAULT_MINIO_PORT = 9000
DEFAULT_MINIO_CONSOLE_PORT = None  # any free port: the console is for people (printed by `up`)
DEFAULT_MLFLOW_PORT = 5000
DEFAULT_AIRFLOW_PORT = 8080
# Test hook: after spawning the server of this name, `up` waits here until it is interrupted,
# so a test can send Ctrl-C at a known point of the start-up (tests/stack/test_stack_faults.py).
HOLD_AFTER_SPAWN_ENV = "DEVSTACK_TEST_HOLD_AFTER_SPAWN"


@dataclass(frozen=True)
class ServerStatus:
    """What `status` reports for one server."""

    name: str
    pid: int
    url: str
    alive: bool
    healthy: bool
    log: str


class Stack(Supervisor[StackState]):
    """The local stack under `root` (default `<repo>/.local`).

    `up()` starts MinIO and MLflow, creates the buckets and migrates the Airflow DB (once per
    root). It reuses a healthy stack already running under the root (`devstack.supervisor`),
    adding the Airflow components when they are asked for and not running yet.

    Ports are preferences: a taken port is replaced by a free one (logged). Pass `None` for
    any free port (what the tests do, so they never collide with a developer's stack).

    `airflow=True` also starts the Airflow components; `schedule` lets the scheduler create
    scheduled runs (off: manual runs only), and `airflow_env` is added to their environment.
    """

    kind = "stack"
    command = "devstack"
    state_type = StackState
    state_file = STATE_FILE
    lock_file = ".devstack.lock"

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        minio_port: int | None = DEFAULT_MINIO_PORT,
        minio_console_port: int | None = DEFAULT_MINIO_CONSOLE_PORT,
        mlflow_port: int | None = DEFAULT_MLFLOW_PORT,
        airflow: bool = False,
        airflow_port: int | None = DEFAULT_AIRFLOW_PORT,
        schedule: bool = False,
        airflow_env: Mapping[str, str] | None = None,
        tools_dir: Path | None = None,
        bin_dir: Path | None = None,
        names: PlatformNames | None = None,
        start_timeout: float = 180.0,
        migrate_timeout: float = 600.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(
            root,
            default_root=default_root(),
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
        )
        self.preferred_ports = {
            "minio": minio_port,
            "minio-console": minio_console_port,
            "mlflow": mlflow_port,
        }
        self.airflow = airflow
        self.airflow_port = airflow_port
        self.schedule = schedule
        self.airflow_env = dict(airflow_env or {})
        self.tools_dir = tools_dir
        self.bin_dir = bin_dir
        self.names = names or load_platform_names()
        self.migrate_timeout = migrate_timeout
        # `timings` of the last `up()`: minio, mlflow, airflow_db_migrate, each Airflow
        # component, up.

    # ------------------------------------------------------------------ inspection
    def is_running(self) -> bool:
        """True when every server this stack needs is recorded and answers its health check."""
        statuses = self.status()
        wanted = set(SERVERS) | (set(AIRFLOW_SERVERS) if self.airflow else set())
        return wanted <= {s.name for s in statuses} and all(s.healthy for s in statuses)

    def status(self) -> list[ServerStatus]:
        """Each recorded server with liveness and health (empty when nothing is recorded)."""
        state = self._load_state()
        if state is None:
            return []
        return [
            ServerStatus(
                name=name,
                pid=server.pid,
                url=f"http://{HOST}:{server.port}",
                alive=server.ref.is_alive(),
                healthy=is_healthy(server.health_url, server.health_component),
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

    @property
    def has_airflow(self) -> bool:
        """True when the Airflow components are recorded as started under this root."""
        return airflow_servers.API_SERVER in self.state.servers

    @property
    def airflow_url(self) -> str:
        """Base URL of the Airflow UI and REST API (`/api/v2`)."""
        return airflow_servers.api_url(self._server(airflow_servers.API_SERVER).port)

    @property
    def airflow_login(self) -> airflow_servers.AirflowLogin:
        """The UI / REST API user (`admin`) and its generated password."""
        return airflow_servers.load_or_create_login(self.root)

    def airflow_api(self) -> AirflowApi:
        """A REST API v2 client logged in as the stack's user."""
        login = self.airflow_login
        return AirflowApi(self.airflow_url, login.username, login.password)

    def s3_client(self) -> Any:
        """A boto3 S3 client with the stack's endpoint and credentials."""
        return minio_server.s3_client(self.s3_endpoint, self.credentials, self.region)

    def env(self) -> dict[str, str]:
        """The environment a shell or subprocess needs (docs/CONTRACTS.md section 5)."""
        return stack_env(
            self.root,
            self.state,
            self.names,
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

    def _wanted(self, recorded: set[str]) -> set[str]:
        """MinIO and MLflow, and every Airflow component once one is recorded."""
        return set(SERVERS) | (set(AIRFLOW_SERVERS) if recorded - set(SERVERS) else set())

    def _is_healthy(self, state: StackState, name: str) -> bool:
        server = state.servers[name]
        return is_healthy(server.health_url, server.health_component)

    def _adopted(self, state: StackState) -> None:
        """A reused stack gets its DB migrated and, when asked for, the Airflow components."""
        self._ensure_migrated()
        if self.airflow and not self.has_airflow:
            self._start_airflow_on_running(state)

    def _start_fresh(self) -> None:
        minio_binary = minio_server.find_minio_binary(self.tools_dir)
        mlflow_executable = mlflow_server.find_mlflow_executable(self.bin_dir)
        airflow_executable = airflow.find_airflow_executable(self.bin_dir)
        credentials = load_or_create_credentials(self.root)
        state = StackState(
            root=str(self.root), credentials=credentials, buckets=dict(self.names.buckets)
        )
        ports = self._choose_ports(self.preferred_ports)

        started_at = time.monotonic()
        self.timings = {}
        migration: OneShot | None = None
        self._state = state
        try:
            minio = minio_server.minio_spec(
                minio_binary, self.root, ports["minio"], ports["minio-console"], credentials
            )
            self._start_server(state, minio, ports["minio"], {"console": ports["minio-console"]})
            self._ensure_buckets(list(state.buckets.values()))
            if not airflow.is_migrated(self.root):
                # Runs while MLflow starts: both mostly wait on imports and SQLite.
                log.info("migrating the Airflow metadata DB (first `up` of this root)")
                env = stack_env(self.root, state, self.names, ports["minio"], ports["mlflow"])
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
            if self.airflow:
                self._start_airflow(state, ports["minio"], ports["mlflow"])
        except BaseException:
            log.error("start-up failed or was interrupted; stopping what was started")
            if migration is not None:
                with ctrl_c_deferred():  # a second Ctrl-C must not leave it behind
                    migration.stop()
            self._stop_and_forget(state)
            raise
        self.timings["up"] = time.monotonic() - started_at
        log.info(
            "stack up in %.1fs: S3 %s, MLflow %s, Airflow %s",
            self.timings["up"],
            self.s3_endpoint,
            self.mlflow_uri,
            self.airflow_url if self.airflow else f"home {self.airflow_home}",
        )

    def _ensure_buckets(self, names: list[str]) -> None:
        """Create the missing buckets the way the chart's bucket hook does (platform-tools)."""
        try:
            for line in ensure_buckets(self.s3_client(), names, wait_seconds=self.start_timeout):
                log.debug("%s", line)
        except CheckFailed as exc:
            raise DevstackError(str(exc)) from None

    def _choose_ports(self, preferred: Mapping[str, int | None]) -> dict[str, int]:
        taken: set[int] = set()
        ports = {}
        for name, port in preferred.items():
            ports[name] = choose_port(name, port, avoid=taken)
            taken.add(ports[name])
        return ports

    def _start_airflow_on_running(self, state: StackState) -> None:
        """Add the Airflow components to a running stack; on failure stop only those."""
        started_at = time.monotonic()
        s3_port = state.servers[minio_server.NAME].port
        mlflow_port = state.servers[mlflow_server.NAME].port
        try:
            self._start_airflow(state, s3_port, mlflow_port)
        except BaseException:
            log.error("Airflow start-up failed or was interrupted; stopping its components")
            with ctrl_c_deferred():
                for name in reversed(AIRFLOW_SERVERS):
                    server = state.servers.pop(name, None)
                    if server is not None:
                        stop_group(name, server.ref, timeout=self.stop_timeout)
                self._save_state(state)
            raise
        self.timings["up"] = time.monotonic() - started_at
        log.info("Airflow up in %.1fs: %s", self.timings["up"], self.airflow_url)

    def _start_airflow(self, state: StackState, s3_port: int, mlflow_port: int) -> None:
        """api-server first (the others report their health through it), then the rest."""
        executable = airflow.find_airflow_executable(self.bin_dir)
        airflow_servers.load_or_create_login(self.root)
        ports = self._choose_ports(
            {
                "api": self.airflow_port,
                "worker-logs": None,
                "trigger-logs": None,
            }
        )
        env = airflow_servers.server_env(
            self.root,
            repo_root() / "dags",
            stack_env(self.root, state, self.names, s3_port, mlflow_port),
            ports,
            jwt_secret=secrets.token_urlsafe(32),
            schedule=self.schedule,
            extra=self.airflow_env,
        )
        specs = {
            name: airflow_servers.server_spec(name, executable, self.root, env)
            for name in AIRFLOW_SERVERS
        }
        extra_ports = {
            airflow_servers.SCHEDULER: {"logs": ports["worker-logs"]},
            airflow_servers.TRIGGERER: {"logs": ports["trigger-logs"]},
        }
        self._start_server(state, specs[airflow_servers.API_SERVER], ports["api"])
        started_at = time.monotonic()
        refs = {
            name: self._spawn(state, specs[name], ports["api"], extra_ports.get(name))
            for name in AIRFLOW_SERVERS[1:]
        }
        for name, ref in refs.items():
            wait_until_healthy(specs[name], ref, self.start_timeout)
            self.timings[name] = time.monotonic() - started_at

    def _spawn(
        self,
        state: StackState,
        spec: ServerSpec,
        port: int,
        extra_ports: dict[str, int] | None = None,
    ) -> ProcessRef:
        ref = super()._spawn(state, spec, port, extra_ports)
        _hold_for_test(spec.name)
        return ref

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

    def _stop(self, state: StackState) -> None:
        """Reverse start order: Airflow (whose tasks use the servers) first, MinIO last."""
        start_order = [*SERVERS, *AIRFLOW_SERVERS]
        for name in sorted(state.servers, key=start_order.index, reverse=True):
            stop_group(name, state.servers[name].ref, timeout=self.stop_timeout)


def _hold_for_test(name: str) -> None:
    if os.environ.get(HOLD_AFTER_SPAWN_ENV) != name:
        return
    log.warning(
        "%s=%s: start-up holds here until interrupted (test hook)", HOLD_AFTER_SPAWN_ENV, name
    )
    while True:
        time.sleep(0.1)


def stack_env(
    root: Path, state: StackState, names: PlatformNames, s3_port: int, mlflow_port: int
) -> dict[str, str]:
    """The stack's client environment, from its state, the platform names and the two ports."""
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
            names.connection_id,
        ),
        "ML_PIPELINE_RUNTIME": "local",
    }
