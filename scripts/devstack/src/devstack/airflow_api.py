"""A small client of Airflow's REST API v2 (a JWT from `/auth/token`), for the scripts, the
benchmarks and the tests that drive the local stack's real Airflow (`Stack.airflow_api()`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import requests

T = TypeVar("T")
FINISHED = ("success", "failed")


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, every: float = 2.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class AirflowApi:
    """`/api/v2` of one api-server, as the user the stack generated."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        answer = requests.post(
            f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        answer.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.url}/api/v2/{path}", timeout=60, **kwargs)

    def get(self, path: str, **params: Any) -> Any:
        answer = self.request("GET", path, params=params)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text[:500]}"
        return answer.json()

    def wait_for_dags(self, *dag_ids: str, timeout: float = 600) -> None:
        """Wait until the dag-processor has parsed these DAGs (after a fresh start it takes a
        parse of the whole DAGs folder)."""
        wanted = set(dag_ids)
        wait_until(
            f"the dag-processor to parse {sorted(wanted)}",
            lambda: wanted <= {d["dag_id"] for d in self.get("dags", limit=1000)["dags"]},
            timeout,
        )

    def trigger(
        self, dag_id: str, *, logical_date: str | None = None, conf: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST a DAG run (`logical_date=None`: a run without logical date)."""
        body = {"logical_date": logical_date, "conf": conf or {}}
        answer = self.request("POST", f"dags/{dag_id}/dagRuns", json=body)
        assert answer.status_code == 200, f"trigger {dag_id}: {answer.status_code} {answer.text}"
        return answer.json()

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], str | None]:
        found = self.get(f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
        return {(t["task_id"], t["map_index"]): t["state"] for t in found["task_instances"]}

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.get(f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The try's log records (structured: messages, exceptions), as one JSON text."""
        found = self.get(
            f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/"
            f"{try_number}",
            full_content="true",
        )
        return json.dumps(found["content"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value, deserialized (None when the task pushed none)."""
        answer = self.request(
            "GET",
            f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/"
            f"xcomEntries/{key}",
            params={"deserialize": "true", "stringify": "false"},
        )
        return answer.json().get("value") if answer.status_code == 200 else None

    def put_connection(self, conn_id: str, **fields: Any) -> None:
        """Create or replace a connection (e.g. the pipeline's webhook)."""
        body = {"connection_id": conn_id, **fields}
        answer = self.request("POST", "connections", json=body)
        if answer.status_code == 409:
            answer = self.request("PATCH", f"connections/{conn_id}", json=body)
        assert answer.status_code in (200, 201), f"connection {conn_id}: {answer.text[:300]}"

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        return wait_until(
            f"{dag_id} {run_id} to finish",
            lambda: (run := self.run(dag_id, run_id))["state"] in FINISHED and run,
            timeout,
            every=5.0,
        )
