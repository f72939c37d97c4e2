"""k8s/kind/fake_gpus.py: its patch is a valid Node status patch, it plans exactly the kind
GPU-like workers, and against an API server (a local stand-in speaking the Kubernetes REST
shapes) the real kubernetes client sends that patch to the status subresource."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import kubernetes_validate
import pytest
import yaml
from devloop_support import REPO, apply_json_patch
from devstack.platform_names import gpu_profiles, load_platform_config
from kubernetes.client import ApiClient
from kubernetes.utils import parse_quantity

SCRIPT = REPO / "k8s" / "kind" / "fake_gpus.py"
KUBE_VERSION = "1.37.0"  # kindest/node of k8s/kind/cluster.yaml


def load_script():
    spec = importlib.util.spec_from_file_location("fake_gpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


fake_gpus = load_script()


def kind_node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A Node as a kind worker reports it (trimmed to what matters, all fields real)."""
    resources = {
        "cpu": "8",
        "ephemeral-storage": "102625208Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "16283924Ki",
        "pods": "110",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "spec": {
            "podCIDR": "10.244.1.0/24",
            "providerID": f"kind://docker/ml-platform/{name}",
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": "2026-11-29T09:00:00Z",
                    "lastTransitionTime": "2026-11-29T09:00:00Z",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "172.18.0.3"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "b3c1",
                "containerRuntimeVersion": "containerd://2.1.4",
                "kernelVersion": "6.8.0",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.37.0",
                "machineID": "m1",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": "s1",
            },
        },
    }


A100_LABELS = {"gpu-type": "a100", "node-pool": "ml-training", "nvidia.com/gpu.count": "2"}


# ------------------------------------------------------------------ the patch itself
def test_patch_adds_gpus_to_capacity_and_allocatable():
    patch = fake_gpus.node_status_patch(2)
    assert patch == [
        {"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "2"},
        {"op": "add", "path": "/status/allocatable/nvidia.com~1gpu", "value": "2"},
    ]


def test_patched_status_is_a_valid_node_status():
    node = kind_node("ml-platform-worker2", A100_LABELS)
    patched = apply_json_patch(node, fake_gpus.node_status_patch(2))
    status = ApiClient()._ApiClient__deserialize(patched["status"], "V1NodeStatus")
    assert parse_quantity(status.capacity["nvidia.com/gpu"]) == 2
    assert parse_quantity(status.allocatable["nvidia.com/gpu"]) == 2
    assert status.capacity["cpu"] == "8", "the patch must leave the other resources alone"
    kubernetes_validate.validate(patched, KUBE_VERSION, strict=True)


def test_patch_is_idempotent():
    node = kind_node("n", A100_LABELS)
    once = apply_json_patch(node, fake_gpus.node_status_patch(2))
    assert apply_json_patch(once, fake_gpus.node_status_patch(2)) == once


def test_zero_gpus_is_refused():
    with pytest.raises(ValueError, match="at least 1 GPU"):
        fake_gpus.node_status_patch(0)


# ------------------------------------------------------------------ planning from the kind config
# kind names workers worker, worker2, …: the CPU worker first, then one per GPU pool.
GPU_WORKERS = [
    f"ml-platform-worker{i}" for i in range(2, 2 + len(gpu_profiles(load_platform_config(REPO))))
]


def test_plan_targets_exactly_the_gpu_like_workers(kind_config):
    plan = fake_gpus.planned_patches(kind_config)
    names = fake_gpus.kind_node_names(kind_config)
    assert names == ["ml-platform-control-plane", "ml-platform-worker", *GPU_WORKERS]
    gpu_like = [
        n
        for n, node in zip(names, kind_config["nodes"], strict=True)
        if "gpu-type" in node.get("labels", {})
    ]
    assert sorted(plan) == sorted(gpu_like) == GPU_WORKERS


def test_cli_help_and_dry_run_need_no_cluster():
    help_out = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--dry-run" in help_out and "--context" in help_out
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--dry-run",
            "--from-config",
            str(REPO / "k8s/kind/cluster.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["node"] for line in lines} == set(GPU_WORKERS)


def test_missing_context_fails_with_a_message_naming_the_fix(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": []}))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--kubeconfig", str(kubeconfig), "--context", "kind-nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "make kind-up" in result.stderr


# ------------------------------------------------------------------ against an API server stand-in
class FakeApiServer:
    """Answers GET /api/v1/nodes?labelSelector=… and PATCH /api/v1/nodes/<n>/status."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                server.requests.append(
                    {"method": "GET", "path": url.path, "query": parse_qs(url.query)}
                )
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                items = [
                    n
                    for n in server.nodes.values()
                    if not selector or selector in n["metadata"]["labels"]
                ]
                self._reply(
                    200, {"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}
                )

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {
                        "method": "PATCH",
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "body": body,
                    }
                )
                name = self.path.split("/")[4]
                server.nodes[name] = apply_json_patch(server.nodes[name], body)
                self._reply(200, server.nodes[name])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    nodes = [
        kind_node("ml-platform-worker", {}),
        kind_node("ml-platform-worker2", A100_LABELS),
        kind_node(
            "ml-platform-worker3", {**A100_LABELS, "gpu-type": "h100", "nvidia.com/gpu.count": "1"}
        ),
    ]
    with FakeApiServer(nodes) as server:
        yield server


def write_kubeconfig(path: Path, server_url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kind-ml-platform", "cluster": {"server": server_url}}],
                "users": [{"name": "kind-ml-platform", "user": {"token": "test"}}],
                "contexts": [
                    {
                        "name": "kind-ml-platform",
                        "context": {"cluster": "kind-ml-platform", "user": "kind-ml-platform"},
                    }
                ],
                "current-context": "kind-ml-platform",
            }
        )
    )
    return path


def test_script_json_patches_the_status_subresource_of_each_gpu_node(api_server, tmp_path, capsys):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api_server.url)
    assert fake_gpus.main(["--kubeconfig", str(kubeconfig)]) == 0
    listing = api_server.requests[0]
    assert listing["method"] == "GET" and listing["path"] == "/api/v1/nodes"
    assert listing["query"]["labelSelector"] == ["nvidia.com/gpu.count"]
    patches = {r["path"]: r for r in api_server.requests if r["method"] == "PATCH"}
    assert set(patches) == {
        "/api/v1/nodes/ml-platform-worker2/status",
        "/api/v1/nodes/ml-platform-worker3/status",
    }
    for request in patches.values():
        assert request["content_type"] == "application/json-patch+json"
    assert patches["/api/v1/nodes/ml-platform-worker2/status"][
        "body"
    ] == fake_gpus.node_status_patch(2)
    assert patches["/api/v1/nodes/ml-platform-worker3/status"][
        "body"
    ] == fake_gpus.node_status_patch(1)
    for name in ("ml-platform-worker2", "ml-platform-worker3"):
        kubernetes_validate.validate(api_server.nodes[name], KUBE_VERSION, strict=True)
    assert "nvidia.com/gpu" not in api_server.nodes["ml-platform-worker"]["status"]["capacity"]
    out = capsys.readouterr().out
    assert "ml-platform-worker2: nvidia.com/gpu=2 (gpu-type=a100" in out
