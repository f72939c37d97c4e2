"""The controller loop against a fake Kubernetes API (no cluster, no client models)."""

from __future__ import annotations

import copy
import threading

import pytest
from taint_reconciler.__main__ import check_heartbeat, main
from taint_reconciler.config import ReconcilerConfig
from taint_reconciler.controller import Reconciler
from taint_reconciler.logic import Pool, Taint

TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")
CONFIG = ReconcilerConfig(taint=TAINT, pools=(Pool("a100", {"gpu-type": "a100"}),))


class ApiError(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


class FakeApi:
    """Nodes by name; patch_node applies the JSON patch, checking the resourceVersion test."""

    def __init__(self, *nodes, conflicts=0):
        self.nodes = {n["metadata"]["name"]: copy.deepcopy(n) for n in nodes}
        self.patches = []
        self.conflicts = conflicts  # how many patches fail as if someone wrote first

    def list_node(self, **_):
        return {
            "metadata": {"resourceVersion": "100"},
            "items": copy.deepcopy(list(self.nodes.values())),
        }

    def read_node(self, name):
        return copy.deepcopy(self.nodes[name])

    def patch_node(self, name, body):
        self.patches.append((name, body))
        if self.conflicts:
            self.conflicts -= 1
            self.nodes[name]["metadata"]["resourceVersion"] = str(
                int(self.nodes[name]["metadata"]["resourceVersion"]) + 1
            )
            raise ApiError(422)
        current = self.nodes[name]
        for op in body:
            if op["op"] == "test" and current["metadata"]["resourceVersion"] != op["value"]:
                raise ApiError(422)
            if op["op"] == "add":
                current.setdefault("spec", {})["taints"] = op["value"]
        current["metadata"]["resourceVersion"] = str(
            int(current["metadata"]["resourceVersion"]) + 1
        )


def gpu_node(name="gpu-1", taints=None):
    return {
        "metadata": {"name": name, "labels": {"gpu-type": "a100"}, "resourceVersion": "1"},
        "spec": {"taints": taints or []},
    }


def cpu_node(name="cpu-1"):
    return {"metadata": {"name": name, "labels": {}, "resourceVersion": "1"}, "spec": {}}


def test_resync_taints_gpu_nodes_only_and_returns_the_list_version(tmp_path):
    api = FakeApi(gpu_node(), cpu_node())
    heartbeat = tmp_path / "hb"
    version = Reconciler(api, CONFIG, heartbeat_file=heartbeat).resync()
    assert version == "100"
    assert api.nodes["gpu-1"]["spec"]["taints"] == [TAINT.as_dict()]
    assert "taints" not in api.nodes["cpu-1"]["spec"]
    assert [name for name, _ in api.patches] == ["gpu-1"]
    assert heartbeat.exists()


def test_second_pass_changes_nothing():
    api = FakeApi(gpu_node())
    reconciler = Reconciler(api, CONFIG)
    reconciler.resync()
    reconciler.resync()
    assert len(api.patches) == 1


def test_dry_run_patches_nothing():
    api = FakeApi(gpu_node())
    assert Reconciler(api, CONFIG, dry_run=True).reconcile(api.read_node("gpu-1")) == "would-patch"
    assert api.patches == []


def test_concurrent_write_rereads_the_node_and_retries():
    api = FakeApi(gpu_node(), conflicts=1)
    assert Reconciler(api, CONFIG).reconcile(api.read_node("gpu-1")) == "patched"
    assert len(api.patches) == 2
    assert api.nodes["gpu-1"]["spec"]["taints"] == [TAINT.as_dict()]


def test_persistent_conflict_gives_up_with_the_error():
    api = FakeApi(gpu_node(), conflicts=10)
    with pytest.raises(ApiError):
        Reconciler(api, CONFIG).reconcile(api.read_node("gpu-1"))
    assert len(api.patches) == 3


def test_other_api_errors_are_not_retried():
    class Forbidden(FakeApi):
        def patch_node(self, name, body):
            raise ApiError(403)

    with pytest.raises(ApiError):
        Reconciler(Forbidden(gpu_node()), CONFIG).reconcile(gpu_node())


def test_watch_events_reconcile_added_and_modified_nodes():
    api = FakeApi(gpu_node("gpu-1"), gpu_node("gpu-2"))
    events = [
        {"type": "ADDED", "object": api.read_node("gpu-1")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
        {"type": "MODIFIED", "object": api.read_node("gpu-2")},
        {"type": "DELETED", "object": cpu_node()},
    ]
    assert Reconciler(api, CONFIG).handle_events(events) is True
    assert sorted(name for name, _ in api.patches) == ["gpu-1", "gpu-2"]


def test_expired_watch_asks_for_a_new_list():
    api = FakeApi()
    events = [{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}]
    assert Reconciler(api, CONFIG).handle_events(events) is False


def test_run_lists_then_watches_from_the_list_version_until_stopped():
    api = FakeApi(gpu_node())
    stop = threading.Event()
    calls = []

    def watch_stream(func, **kwargs):
        calls.append(kwargs)
        stop.set()  # one round is enough
        return iter([])

    Reconciler(api, CONFIG).run(watch_stream, resync_seconds=60, stop=stop)
    assert calls == [
        {"resource_version": "100", "timeout_seconds": 60, "allow_watch_bookmarks": True}
    ]
    assert api.nodes["gpu-1"]["spec"]["taints"] == [TAINT.as_dict()]


def test_run_survives_api_errors():
    class Flaky(FakeApi):
        failures = 1

        def list_node(self, **kw):
            if self.failures:
                self.failures -= 1
                raise ApiError(500)
            return super().list_node(**kw)

    api = Flaky(gpu_node())
    stop = threading.Event()

    def watch_stream(func, **kwargs):
        stop.set()
        return iter([])

    Reconciler(api, CONFIG).run(watch_stream, resync_seconds=60, stop=stop, error_backoff_seconds=0)
    assert api.nodes["gpu-1"]["spec"]["taints"] == [TAINT.as_dict()]


def test_heartbeat_probe(tmp_path):
    hb = tmp_path / "hb"
    assert check_heartbeat(hb, 60) == 1
    hb.write_text("x")
    assert check_heartbeat(hb, 60) == 0
    assert check_heartbeat(hb, 60, now=hb.stat().st_mtime + 61) == 1


def test_cli_probe_mode(tmp_path):
    hb = tmp_path / "hb"
    hb.write_text("x")
    assert main(["--check-heartbeat", str(hb), "--max-age-seconds", "60"]) == 0


def test_cli_refuses_a_bad_config(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "absent.json")]) == 2
    assert "cannot read the platform config" in capsys.readouterr().err


def test_client_models_are_converted():
    from kubernetes.client import V1Node, V1NodeSpec, V1ObjectMeta, V1Taint

    api = FakeApi(gpu_node())
    model = V1Node(
        metadata=V1ObjectMeta(name="gpu-1", labels={"gpu-type": "a100"}, resource_version="1"),
        spec=V1NodeSpec(taints=[V1Taint(key="other", value="x", effect="NoSchedule")]),
    )
    assert Reconciler(api, CONFIG).reconcile(model) == "patched"
    ((_, body),) = api.patches
    assert body[-1]["value"] == [
        {"key": "other", "value": "x", "effect": "NoSchedule"},
        TAINT.as_dict(),
    ]
