"""The local Airflow home: SQLite metadata DB (migrated once per root) and its environment.

Nothing here runs a long-lived Airflow process: DAGs run through `dag.test()` (or a
scheduler the caller starts) with the environment from `airflow_env()`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from devstack.paths import venv_executable
from devstack.process import OneShot
from devstack.state import Credentials

log = logging.getLogger(__name__)

XCOM_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
XCOM_THRESHOLD_BYTES = 4096
MIGRATED_MARKER = ".devstack-migrated"


def airflow_home(root: Path) -> Path:
    return root / "airflow"


def find_airflow_executable(bin_dir: Path | None = None) -> Path:
    """`airflow` from the running interpreter's environment, else a one-line error."""
    return venv_executable("airflow", "Airflow executable", bin_dir)


def aws_connection_json(s3_endpoint: str, credentials: Credentials, region: str) -> str:
    """The object-store connection in Airflow's JSON form, pointed at the local MinIO."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": credentials.access_key,
            "password": credentials.secret_key,
            "extra": {"endpoint_url": s3_endpoint, "region_name": region},
        },
        sort_keys=True,
    )


def airflow_env(
    root: Path,
    dags_folder: Path,
    s3_endpoint: str,
    credentials: Credentials,
    region: str,
    xcom_bucket: str,
    connection_id: str,
) -> dict[str, str]:
    """The AIRFLOW_* variables of the local Airflow (docs/CONTRACTS.md section 5);
    `connection_id` is the platform config's `objectStoreConnectionId`."""
    home = airflow_home(root)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        f"AIRFLOW_CONN_{connection_id.upper()}": aws_connection_json(
            s3_endpoint, credentials, region
        ),
        "AIRFLOW__CORE__XCOM_BACKEND": XCOM_BACKEND,
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"s3://{connection_id}@{xcom_bucket}/xcom",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": str(XCOM_THRESHOLD_BYTES),
    }


def _installed_airflow_version() -> str:
    try:
        return metadata.version("apache-airflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def is_migrated(root: Path) -> bool:
    """True when this root's metadata DB was migrated by the installed Airflow version."""
    home = airflow_home(root)
    marker = home / MIGRATED_MARKER
    return (
        (home / "airflow.db").is_file()
        and marker.is_file()
        and marker.read_text().strip() == _installed_airflow_version()
    )


def start_migration(root: Path, executable: Path, env: Mapping[str, str]) -> OneShot:
    """Run `airflow db migrate` in the background (log: `<root>/logs/airflow-db-migrate.log`)."""
    airflow_home(root).mkdir(parents=True, exist_ok=True)
    (airflow_home(root) / MIGRATED_MARKER).unlink(missing_ok=True)
    return OneShot(
        "airflow db migrate",
        [str(executable), "db", "migrate"],
        {**os.environ, **env},
        root / "logs" / "airflow-db-migrate.log",
    )


def mark_migrated(root: Path) -> None:
    (airflow_home(root) / MIGRATED_MARKER).write_text(_installed_airflow_version() + "\n")
