"""`trainer serve`: the model server, following `models:/<name>@champion` by itself.

The serving Deployment runs this. A watcher thread looks the alias up every `poll_seconds`;
when `trainer deploy` or `trainer rollback` has moved it, the new version is loaded in that
thread (the server keeps answering with the old one meanwhile) and swapped in with one
assignment. Nothing restarts the pod, so nothing needs RBAC.

    GET  /health       200 while the process and its watcher run (liveness and readiness)
    GET  /version      the served version, the alias' version and the last lookup's outcome
    POST /invocations  {"inputs": [[64 pixels], ...]} or {"dataframe_split": {...}}
                       -> {"predictions": [digit, ...], "logits": [[...], ...], ...};
                       503 "no champion yet: run the training pipeline" until one exists

The server is ready before any champion exists, so `helm install --wait` succeeds on a fresh
cluster. A lookup or load that fails (MLflow down, broken artifacts) is logged and retried at
the next poll; the version being served stays.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from ml_trainer import contract, tracking
from ml_trainer.evaluate import CHAMPION

log = logging.getLogger(__name__)

NO_CHAMPION = "no champion yet: run the training pipeline"
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ServedModel:
    version: str
    model: Any  # an mlflow.pyfunc.PyFuncModel
    loaded_at: float


def resolve_alias(model_name: str, alias: str) -> str | None:
    """The version the alias points at, or None when the model or the alias does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except RestException as exc:
        if tracking.is_not_found(exc):
            return None
        raise


def load_version(model_name: str, version: str) -> Any:
    """Load one registered version as a pyfunc (by version: the alias may move meanwhile)."""
    import mlflow

    return mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")


class ChampionWatcher:
    """Keeps `current` on the version the alias points at (see the module docstring)."""

    def __init__(
        self,
        model_name: str,
        alias: str = CHAMPION,
        poll_seconds: float = 30.0,
        resolve: Callable[[str, str], str | None] = resolve_alias,
        load: Callable[[str, str], Any] = load_version,
    ) -> None:
        self.model_name = model_name
        self.alias = alias
        self.poll_seconds = poll_seconds
        self._resolve = resolve
        self._load = load
        self.current: ServedModel | None = None
        self.alias_version: str | None = None
        self.last_checked: float | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def poll_once(self) -> None:
        """Look the alias up; load and swap in the version it names when that is new."""
        version = self._resolve(self.model_name, self.alias)
        self.alias_version, self.last_checked = version, time.time()
        served = self.current.version if self.current else None
        if version is None or version == served:
            return
        log.info(
            "%s@%s is version %s (serving %s): loading it",
            self.model_name,
            self.alias,
            version,
            served,
        )
        model = self._load(self.model_name, version)
        self.current = ServedModel(version=version, model=model, loaded_at=time.time())
        log.info("now serving %s version %s", self.model_name, version)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
                self.last_error = None
            except Exception as exc:  # MLflow down, artifacts unreadable: retry at the next poll
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.warning(
                    "looking up %s@%s failed: %s", self.model_name, self.alias, self.last_error
                )
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        current = self.current
        return {
            "model_name": self.model_name,
            "alias": self.alias,
            "version": current.version if current else None,
            "loaded_at": current.loaded_at if current else None,
            "alias_version": self.alias_version,
            "last_checked": self.last_checked,
            "last_error": self.last_error,
        }


class BadRequest(ValueError):
    """The request body is not a batch of digit images."""


def parse_features(body: bytes) -> np.ndarray:
    """`{"inputs": rows}`, `{"instances": rows}` or `{"dataframe_split": {columns, data}}` -> (n, 64)."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest('send a JSON object: {"inputs": [[64 pixel values], ...]}')
    if "dataframe_split" in payload:
        frame = payload["dataframe_split"] or {}
        columns, data = frame.get("columns"), frame.get("data")
        if columns is None or data is None:
            raise BadRequest("dataframe_split needs `columns` and `data`")
        missing = [c for c in contract.FEATURE_COLUMNS if c not in columns]
        if missing:
            raise BadRequest(f"dataframe_split lacks columns {missing[:5]}")
        index = [columns.index(c) for c in contract.FEATURE_COLUMNS]
        rows = [[row[i] for i in index] for row in data]
    else:
        rows = payload.get("inputs", payload.get("instances"))
        if rows is None:
            raise BadRequest(
                'send {"inputs": [[64 pixel values], ...]} or {"dataframe_split": ...}'
            )
    try:
        features = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"the rows are not numbers: {exc}") from None
    width = len(contract.FEATURE_COLUMNS)
    if features.ndim != 2 or features.shape[1] != width or len(features) == 0:
        raise BadRequest(f"expected rows of {width} pixel values, got shape {list(features.shape)}")
    return features


def make_handler(watcher: ChampionWatcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "ml-trainer-serve"

        def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def do_GET(self) -> None:
            if self.path == "/health":
                if watcher.alive:
                    self._reply(
                        HTTPStatus.OK, {"status": "ok", "version": watcher.status()["version"]}
                    )
                else:
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "alias watcher stopped"})
            elif self.path == "/version":
                self._reply(HTTPStatus.OK, watcher.status())
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})
                return
            served = watcher.current  # one read: a swap during this request does not mix models
            if served is None:
                self._reply(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    {
                        "error": NO_CHAMPION,
                        "model_name": watcher.model_name,
                        "alias": watcher.alias,
                    },
                )
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._reply(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"body over {MAX_BODY_BYTES} bytes"},
                )
                return
            try:
                features = parse_features(self.rfile.read(length))
            except BadRequest as exc:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                return
            logits = np.asarray(served.model.predict(features), dtype=np.float64)
            self._reply(
                HTTPStatus.OK,
                {
                    "model_name": watcher.model_name,
                    "model_version": served.version,
                    "predictions": logits.argmax(axis=1).tolist(),
                    "logits": logits.tolist(),
                },
            )

    return Handler


def serve(
    model_name: str, host: str, port: int, poll_seconds: float, alias: str = CHAMPION
) -> None:
    """Run the server until SIGTERM / Ctrl-C (the CLI's `serve` command)."""
    import signal

    tracking.configure()
    watcher = ChampionWatcher(model_name, alias=alias, poll_seconds=poll_seconds)
    server = ThreadingHTTPServer((host, port), make_handler(watcher))
    server.daemon_threads = True

    def stop(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    watcher.start()
    log.info(
        "serving models:/%s@%s on http://%s:%d (alias checked every %ss)",
        model_name,
        alias,
        host,
        server.server_address[1],
        poll_seconds,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        server.server_close()
