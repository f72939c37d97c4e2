"""MLflow plumbing: where the server is, failing fast when it is not, and model lookup.

MLflow's own client retries a dead server for minutes (7 retries, backoff factor 2) before
it says anything. A pod should fail in seconds with the endpoint in the message, so the
trainer probes `<MLFLOW_TRACKING_URI>/health` first and lowers the retry defaults (only
where the environment has not set them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from ml_trainer.errors import TrainerError

log = logging.getLogger(__name__)

# Defaults the trainer applies unless the environment already sets them.
ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    # pods cannot reach the internet; do not try to send usage telemetry from them
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # the logged model pins its own requirements; do not attach the repo's uv project files
    "MLFLOW_LOG_UV_FILES": "false",
}
PROBE_TIMEOUT_S = 3.0
PROBE_ATTEMPTS = 2
MODEL_NAME_IN_RUN = "model"


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise TrainerError(
            "MLFLOW_TRACKING_URI is not set.",
            "export MLFLOW_TRACKING_URI=http://<mlflow-host>:5000 (the chart and `devstack env` set it).",
        )
    return uri


def configure() -> str:
    """Apply the environment defaults, point MLflow at the server; return its URI."""
    for name, value in ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # if the server hands out s3:// artifact URIs (no proxy), the client uploads to the
    # same object store the trainer reads from
    if os.environ.get("AWS_ENDPOINT_URL"):
        os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", os.environ["AWS_ENDPOINT_URL"])
    uri = tracking_uri()
    import mlflow

    mlflow.set_tracking_uri(uri)
    return uri


def check_reachable(uri: str | None = None) -> None:
    """Fail within seconds, naming the endpoint, when the tracking server does not answer."""
    uri = uri or tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return  # a file/sqlite store: nothing to probe
    url = uri.rstrip("/") + "/health"
    last: Exception | None = None
    for attempt in range(PROBE_ATTEMPTS):
        try:
            with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
                if response.status == 200:
                    return
                last = RuntimeError(f"HTTP {response.status}")
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        if attempt + 1 < PROBE_ATTEMPTS:
            time.sleep(1.0)
    raise TrainerError(
        f"The MLflow tracking server at {uri} is unreachable ({url}: {last}).",
        "check MLFLOW_TRACKING_URI and that the MLflow server is running; rerun when it answers.",
    )


@contextlib.contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """Turn MLflow client failures into a TrainerError that names the server and the action."""
    from mlflow.exceptions import MlflowException, RestException

    try:
        yield
    except RestException as exc:
        raise TrainerError(
            f"MLflow at {os.environ.get('MLFLOW_TRACKING_URI')} refused to {action}: {exc}.",
            "check the names and ids passed on the command line and the server's logs.",
        ) from exc
    except MlflowException as exc:
        raise TrainerError(
            f"MLflow at {os.environ.get('MLFLOW_TRACKING_URI')} failed while trying to {action}: {exc}.",
            "check that the MLflow server (and the artifact store behind it) is up, then rerun.",
        ) from exc


def is_not_found(exc: Exception) -> bool:
    """True for the server's "no such registered model / alias" answers."""
    code = getattr(exc, "error_code", "")
    message = str(exc)
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message
    )


def ensure_experiment(name: str) -> str:
    """Set the active experiment, creating it if needed (safe when parallel trials race)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(2):
        try:
            return mlflow.set_experiment(name).experiment_id
        except MlflowException as exc:
            if attempt == 0 and getattr(exc, "error_code", "") == "RESOURCE_ALREADY_EXISTS":
                continue  # another trial created it between our lookup and our create
            raise
    raise AssertionError("unreachable")


def logged_model_uri(run_id: str) -> str:
    """The `models:/<model_id>` URI of the newest READY model the run logged."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus

    client = MlflowClient()
    run = client.get_run(run_id)
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{MODEL_NAME_IN_RUN}'",
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
        output_format="list",
    )
    ready = [m for m in models if m.status == LoggedModelStatus.READY]
    if not ready:
        raise TrainerError(
            f"MLflow run {run_id} has no logged model named {MODEL_NAME_IN_RUN!r}.",
            "pass the run id that `trainer train` returned (XCom run_id), or rerun training.",
        )
    return ready[0].model_uri
