"""The watch loop: list the nodes, reconcile each, watch for changes, re-list periodically.

The Kubernetes API object (`api`) only needs `list_node`, `read_node` and `patch_node`, the
methods of `kubernetes.client.CoreV1Api`; tests pass a fake. Nodes arrive as client models
or as dicts and are turned into API-shaped dicts before the pure logic sees them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from taint_reconciler.config import ReconcilerConfig
from taint_reconciler.logic import json_patch, plan_node

log = logging.getLogger("taint_reconciler")

# HTTP status codes the loop reacts to.
CONFLICT = 409  # resourceVersion moved on between read and patch
UNPROCESSABLE = 422  # the JSON patch's `test` op failed: same cause
GONE = 410  # the watch's resourceVersion is too old: list again

MAX_ATTEMPTS = 3


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def to_dict(obj: Any) -> dict[str, Any]:
    """A Node as an API-shaped dict (camelCase keys), from a client model or a dict."""
    if isinstance(obj, dict):
        return obj
    from kubernetes.client import ApiClient  # imported lazily: the logic tests need no client

    return ApiClient().sanitize_for_serialization(obj)


class Reconciler:
    def __init__(
        self,
        api: Any,
        config: ReconcilerConfig,
        *,
        dry_run: bool = False,
        heartbeat_file: Path | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self.dry_run = dry_run
        self.heartbeat_file = heartbeat_file

    # ------------------------------------------------------------------ one node
    def reconcile(self, node: Any) -> str:
        """Bring one node in line. Returns unchanged | patched | would-patch | conflict."""
        data = to_dict(node)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            plan = plan_node(data, self.config.pools, self.config.taint)
            if plan is None:
                return "unchanged"
            if self.dry_run:
                log.info("node %s: would %s", plan.node, plan.reason)
                return "would-patch"
            version = (data.get("metadata") or {}).get("resourceVersion")
            try:
                self.api.patch_node(plan.node, json_patch(plan, version))
            except Exception as exc:
                if _status(exc) not in (CONFLICT, UNPROCESSABLE) or attempt == MAX_ATTEMPTS:
                    raise
                log.info(
                    "node %s changed while patching (attempt %d); reading it again",
                    plan.node,
                    attempt,
                )
                data = to_dict(self.api.read_node(plan.node))
                continue
            log.info("node %s: %s", plan.node, plan.reason)
            return "patched"
        return "conflict"  # pragma: no cover - the loop returns or raises before

    # ------------------------------------------------------------------ all nodes
    def resync(self) -> str | None:
        """Reconcile every node; returns the list's resourceVersion (where a watch starts)."""
        listing = self.api.list_node()
        data = to_dict(listing)
        results: dict[str, int] = {}
        for node in data.get("items") or []:
            outcome = self.reconcile(node)
            results[outcome] = results.get(outcome, 0) + 1
        self.beat()
        log.info(
            "resync: %s", ", ".join(f"{n} {k}" for k, n in sorted(results.items())) or "no nodes"
        )
        return (data.get("metadata") or {}).get("resourceVersion")

    def handle_events(self, events: Iterable[dict[str, Any]]) -> bool:
        """Reconcile the nodes of watch events. False when the watch must restart (410 Gone)."""
        for event in events:
            kind = event.get("type")
            if kind == "ERROR":
                obj = to_dict(event.get("object") or {})
                if obj.get("code") == GONE:
                    log.info("watch expired (410 Gone); listing again")
                    return False
                log.warning("watch error: %s", obj.get("message") or obj)
                return False
            if kind in ("ADDED", "MODIFIED"):
                self.reconcile(event["object"])
            self.beat()
        return True

    def beat(self) -> None:
        if self.heartbeat_file is not None:
            self.heartbeat_file.parent.mkdir(parents=True, exist_ok=True)
            self.heartbeat_file.write_text(str(time.time()))

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        watch_stream: Callable[..., Iterable[dict[str, Any]]],
        *,
        resync_seconds: int,
        stop: threading.Event | None = None,
        error_backoff_seconds: float = 5.0,
    ) -> None:
        """List, then watch from the list's resourceVersion until it times out
        (`resync_seconds`), then list again. API errors are logged and retried."""
        stop = stop or threading.Event()
        if not self.config.pools:
            log.warning("no GPU pool is enabled in the platform config: nothing to reconcile")
        while not stop.is_set():
            try:
                version = self.resync()
                events = watch_stream(
                    self.api.list_node,
                    resource_version=version,
                    timeout_seconds=resync_seconds,
                    allow_watch_bookmarks=True,
                )
                self.handle_events(events)
            except Exception as exc:
                if _status(exc) == GONE:
                    continue
                log.error("API error, retrying in %.0fs: %s", error_backoff_seconds, exc)
                stop.wait(error_backoff_seconds)
