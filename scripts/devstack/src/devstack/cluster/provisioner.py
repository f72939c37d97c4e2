"""The harness's volume provisioner: every claim of its StorageClass gets a PersistentVolume.

    python -m devstack.cluster.provisioner --kubeconfig K --health-port P

A cluster without a provisioner leaves every PersistentVolumeClaim Pending, and every pod that
mounts one unschedulable. This controller does what a dynamic provisioner does, for the
harness's default StorageClass (`harness-local`, created at start-up): for each Pending claim
of that class it creates a hostPath PersistentVolume of the requested size and access modes
with a `claimRef` to the claim, which the controller-manager's PV controller then binds. When
a claim is deleted, its Released volume is deleted too (reclaim policy Delete). Nothing is
mounted anywhere: kwok's pods run nothing. `/healthz` on 127.0.0.1 answers 200 while the
controller's watch loop runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.ports import HOST

log = logging.getLogger("devstack.cluster.provisioner")

STORAGE_CLASS = "harness-local"
PROVISIONER = "ml-platform.dev/harness-hostpath"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
VOLUME_ROOT = "/var/lib/harness-volumes"  # recorded in the PV only; nothing is mounted
RESYNC_SECONDS = 30


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


def volume_for(claim: Any) -> dict[str, Any]:
    """The PersistentVolume that satisfies `claim` (a V1PersistentVolumeClaim)."""
    meta, spec = claim.metadata, claim.spec
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta.uid}",
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": spec.resources.requests["storage"]},
            "accessModes": list(spec.access_modes),
            "volumeMode": spec.volume_mode or "Filesystem",
            "storageClassName": STORAGE_CLASS,
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": f"{VOLUME_ROOT}/{meta.namespace}/{meta.name}"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta.namespace,
                "name": meta.name,
                "uid": meta.uid,
            },
        },
    }


def is_ours(claim: Any) -> bool:
    """A Pending, unbound claim of our class (directly or as the cluster default)."""
    if claim.status.phase != "Pending" or claim.spec.volume_name:
        return False
    annotations = claim.metadata.annotations or {}
    wanted = annotations.get("volume.kubernetes.io/storage-provisioner") or annotations.get(
        "volume.beta.kubernetes.io/storage-provisioner"
    )
    return claim.spec.storage_class_name == STORAGE_CLASS or wanted == PROVISIONER


class Provisioner:
    def __init__(self, core: Any, storage: Any) -> None:
        self.core = core
        self.storage = storage
        self.alive_at = time.monotonic()

    def ensure_storage_class(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.storage.create_storage_class(storage_class())
        except ApiException as exc:
            if exc.status != 409:
                raise

    def provision(self, claim: Any) -> None:
        from kubernetes.client.exceptions import ApiException

        if not is_ours(claim):
            return
        try:
            self.core.create_persistent_volume(volume_for(claim))
            log.info("provisioned %s/%s", claim.metadata.namespace, claim.metadata.name)
        except ApiException as exc:
            if exc.status != 409:  # already provisioned (a resync)
                raise

    def reclaim(self) -> None:
        """Delete our volumes whose claim is gone."""
        for volume in self.core.list_persistent_volume().items:
            annotations = volume.metadata.annotations or {}
            if annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if volume.status.phase in ("Released", "Failed"):
                self.core.delete_persistent_volume(volume.metadata.name)
                log.info("deleted released volume %s", volume.metadata.name)

    def resync(self) -> str:
        claims = self.core.list_persistent_volume_claim_for_all_namespaces()
        for claim in claims.items:
            self.provision(claim)
        self.reclaim()
        self.alive_at = time.monotonic()
        return str(claims.metadata.resource_version)

    def run(self, stop: threading.Event) -> None:
        from kubernetes import watch

        self.ensure_storage_class()
        while not stop.is_set():
            try:
                version = self.resync()
                stream = watch.Watch().stream(
                    self.core.list_persistent_volume_claim_for_all_namespaces,
                    resource_version=version,
                    timeout_seconds=RESYNC_SECONDS,
                )
                for event in stream:
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.provision(event["object"])
                    elif event["type"] == "DELETED":
                        self.reclaim()
                    self.alive_at = time.monotonic()
            except Exception as exc:  # the API server restarting, say: list again shortly
                log.warning("watch failed, listing again in 1s: %s", exc)
                stop.wait(1.0)


def serve_health(port: int, provisioner: Provisioner) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fresh = time.monotonic() - provisioner.alive_at < 3 * RESYNC_SECONDS
            self.send_response(200 if self.path == "/healthz" and fresh else 503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.cluster.provisioner", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the harness")
    parser.add_argument("--health-port", type=int, required=True, help="port of /healthz")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=args.kubeconfig)
    provisioner = Provisioner(client.CoreV1Api(api), client.StorageV1Api(api))
    provisioner.ensure_storage_class()
    serve_health(args.health_port, provisioner)
    provisioner.run(threading.Event())
    return 0


if __name__ == "__main__":
    sys.exit(main())
