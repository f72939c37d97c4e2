"""HTTP checks of the platform's servers (helm test): MLflow and the Airflow API server."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from platform_tools.errors import CheckFailed

TIMEOUT_S = 10.0


def http_get(url: str, credentials: tuple[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are statuses, an unreachable server raises."""
    request = urllib.request.Request(url)
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise CheckFailed(f"GET {url}: not reachable ({exc})") from exc


def check_mlflow(tracking_uri: str, credentials: tuple[str, str] | None) -> list[str]:
    """/health answers OK, and the REST API answers - with the credentials when auth is on,
    in which case an anonymous call must be refused (basic auth really protects it)."""
    base = tracking_uri.rstrip("/")
    status, body = http_get(f"{base}/health")
    if status != 200 or body.decode().strip() != "OK":
        raise CheckFailed(f"GET {base}/health -> {status} {body[:200]!r}: MLflow is not healthy")
    lines = [f"GET {base}/health -> OK"]
    api = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
    status, body = http_get(api, credentials)
    if status != 200:
        hint = "check MLFLOW_TRACKING_USERNAME / _PASSWORD" if credentials else "is auth on?"
        raise CheckFailed(f"GET {api} -> {status} {body[:200]!r} ({hint})")
    lines.append(f"GET {api} -> 200" + (" (authenticated)" if credentials else ""))
    if credentials is not None:
        anonymous, _ = http_get(api)
        if anonymous != 401:
            raise CheckFailed(f"GET {api} without credentials -> {anonymous}, expected 401")
        lines.append(f"GET {api} without credentials -> 401")
    return lines


def check_airflow(url: str) -> list[str]:
    """Every component the API server reports is healthy."""
    health_url = url.rstrip("/") + "/api/v2/monitor/health"
    status, body = http_get(health_url)
    if status != 200:
        raise CheckFailed(f"GET {health_url} -> {status} {body[:200]!r}")
    try:
        health: dict[str, Any] = json.loads(body)
    except ValueError as exc:
        raise CheckFailed(f"GET {health_url}: not JSON ({exc})") from exc
    unhealthy = {
        name: part.get("status")
        for name, part in health.items()
        if isinstance(part, dict) and part.get("status") not in (None, "healthy")
    }
    if unhealthy:
        raise CheckFailed(f"unhealthy Airflow components: {unhealthy} ({health_url})")
    return [f"GET {health_url} -> {json.dumps(health, sort_keys=True)}"]
