"""A real Airflow 3 on the local stack: api-server, scheduler, dag-processor and triggerer.

The four components run as `airflow <component>` processes on the stack's metadata DB
(SQLite: Airflow's own `airflow standalone` runs the LocalExecutor on it) with the stack's
environment, so tasks reach the same MinIO and MLflow. They share:

- the LocalExecutor (tasks run as local processes of the scheduler; `parallelism` sized for a
  laptop), the `local` pipeline runtime and the DAGs folder of the checkout (edits are picked
  up by the dag-processor);
- the simple auth manager with one `admin` user whose password is generated once per root
  (`<root>/airflow/simple_auth_manager_passwords.json`, Airflow's own file format);
- a JWT secret generated per `up` (the api-server checks the tokens the scheduler issues to
  tasks for the execution API);
- `PYTHONPATH=<dags folder>`, so the triggerer can import the deadline-alert callback the DAGs
  name by path (the chart sets the same for its triggerer);
- manual runs only: the scheduler does not create the `@daily` runs (`--schedule` turns that
  on) and new DAGs start unpaused, so a Trigger button or a REST call runs at once.

Readiness: the api-server answers `/api/v2/monitor/health`; the other three are healthy when
that endpoint reports their heartbeat as healthy.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.airflow_home import airflow_home
from devstack.ports import HOST
from devstack.process import ServerSpec
from devstack.state import write_private

log = logging.getLogger(__name__)

API_SERVER = "airflow-api-server"
SCHEDULER = "airflow-scheduler"
DAG_PROCESSOR = "airflow-dag-processor"
TRIGGERER = "airflow-triggerer"
# Start order: the others report their health through the api-server.
COMPONENTS = (API_SERVER, SCHEDULER, DAG_PROCESSOR, TRIGGERER)
# `airflow <subcommand>` and the key of each component in /api/v2/monitor/health.
SUBCOMMANDS = {
    API_SERVER: "api-server",
    SCHEDULER: "scheduler",
    DAG_PROCESSOR: "dag-processor",
    TRIGGERER: "triggerer",
}
HEALTH_KEYS = {SCHEDULER: "scheduler", DAG_PROCESSOR: "dag_processor", TRIGGERER: "triggerer"}

ADMIN_USER = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
# A laptop (the reference machine has 2 cores): a few task processes at a time.
PARALLELISM = 4
# How often the dag-processor lists the DAGs folder for new files and re-parses a changed one.
REFRESH_SECONDS = 30


@dataclass(frozen=True)
class AirflowLogin:
    """The UI / REST API user of the local Airflow."""

    username: str
    password: str


def passwords_file(root: Path) -> Path:
    return airflow_home(root) / PASSWORDS_FILE


def load_or_create_login(root: Path) -> AirflowLogin:
    """The admin password of this root, generated on first use (Airflow's passwords file)."""
    path = passwords_file(root)
    if path.is_file():
        passwords = json.loads(path.read_text())
        if passwords.get(ADMIN_USER):
            return AirflowLogin(ADMIN_USER, passwords[ADMIN_USER])
    login = AirflowLogin(ADMIN_USER, secrets.token_urlsafe(12))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({login.username: login.password}) + "\n")
    return login


def api_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def health_url(api_port: int) -> str:
    return f"{api_url(api_port)}/api/v2/monitor/health"


def server_env(
    root: Path,
    dags_folder: Path,
    client_env: Mapping[str, str],
    ports: Mapping[str, int],
    *,
    jwt_secret: str,
    schedule: bool,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment of every Airflow component.

    The caller's environment is inherited (as `airflow standalone` does), so a setting such
    as `ML_PIPELINE_SENSOR_POKE_SECONDS=5 devstack up --airflow` reaches the DAGs; the stack's
    own variables win over it, and `extra` (the Python API's) over both.
    """
    base_url = api_url(ports["api"])
    python_path = os.pathsep.join(
        p for p in (str(dags_folder), os.environ.get("PYTHONPATH", "")) if p
    )
    return {
        **os.environ,
        **client_env,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(root)),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(ports["api"]),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(schedule),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(REFRESH_SECONDS),
        # Versioned bundles (GitDagBundle) clone here; Airflow's default is a shared /tmp path.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(airflow_home(root) / "dag_bundles"),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(REFRESH_SECONDS),
        # The scheduler and the triggerer serve task logs on fixed ports by default.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker-logs"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger-logs"]),
        "PYTHONPATH": python_path,
        **(extra or {}),
    }


def server_spec(name: str, executable: Path, root: Path, env: Mapping[str, str]) -> ServerSpec:
    """`airflow <component>`, logging to `<root>/logs/<name>.log`."""
    api_port = int(env["AIRFLOW__API__PORT"])
    return ServerSpec(
        name=name,
        argv=[str(executable), SUBCOMMANDS[name]],
        env=env,
        log_path=root / "logs" / f"{name}.log",
        health_url=health_url(api_port),
        health_component=HEALTH_KEYS.get(name),
        cwd=airflow_home(root),
    )
