"""`Cluster`: a real Kubernetes control plane on loopback with kwok-simulated GPU pools.

    with Cluster(root) as cluster:              # up() on enter, down() on exit
        subprocess.run(["kubectl", "get", "nodes"], env=os.environ | cluster.env())
        core = kubernetes.client.CoreV1Api(cluster.api_client())

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as process groups
under `root` (default `<repo>/.local/cluster`), on free 127.0.0.1 ports; `<root>/kubeconfig` is
the administrator's kubeconfig. `up()` returns once the API server is ready, every simulated
node (`devstack.cluster.nodes`) is Ready without the not-ready taint, and the `default`
ServiceAccount exists. Every process `up()` started is stopped on any failure or Ctrl-C, and by
`down()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from devstack.cluster import control_plane as cp
from devstack.cluster.nodes import SimulatedNode, pool_nodes
from devstack.cluster.pki import Pki, create_pki, write_kubeconfigs
from devstack.errors import DevstackError, ServerStartError, StackConflictError
from devstack.paths import default_root
from devstack.ports import HOST, choose_port
from devstack.process import is_healthy, spawn, stop_group, wait_until_healthy
from devstack.state import ServerState

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
KUBECONFIG = "kubeconfig"
DEFAULT_APISERVER_PORT = 6443
NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


@dataclass
class ClusterState:
    """What `cluster.json` records: the ports and each started process group."""

    root: str
    ports: dict[str, int]
    servers: dict[str, ServerState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        return cls(
            root=raw["root"],
            ports={k: int(v) for k, v in raw["ports"].items()},
            servers={name: ServerState(**s) for name, s in raw["servers"].items()},
        )


def default_cluster_root() -> Path:
    return default_root() / "cluster"


class Cluster:
    """The harness under `root`; see the module docstring."""

    def __init__(
        self,
        root: Path | str | None = None,
        *,
        apiserver_port: int | None = DEFAULT_APISERVER_PORT,
        nodes: list[SimulatedNode] | None = None,
        tools_dir: Path | None = None,
        start_timeout: float = 120.0,
        ready_timeout: float = 180.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else default_cluster_root()
        self.apiserver_port = apiserver_port
        self.nodes = nodes
        self.tools_dir = tools_dir
        self.start_timeout = start_timeout
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.reused = False
        # Seconds each step of the last `up()` took (per component, `nodes_ready`, `up`).
        self.timings: dict[str, float] = {}
        self._state: ClusterState | None = None

    # ------------------------------------------------------------------ paths
    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def kubeconfig(self) -> Path:
        """The administrator's kubeconfig (`system:masters`)."""
        return self.root / KUBECONFIG

    @property
    def state(self) -> ClusterState:
        if self._state is None:
            self._state = _load_state(self.root)
        if self._state is None:
            raise DevstackError(
                f"no cluster harness is running under {self.root}; start it with "
                "`devstack cluster up` (or `make cluster-up`)"
            )
        return self._state

    @property
    def server_url(self) -> str:
        return f"https://{HOST}:{self.state.ports[cp.APISERVER]}"

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` authenticated as the administrator."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    # ------------------------------------------------------------------ lifecycle
    def up(self) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            existing = _load_state(self.root)
            if existing is not None and self._adopt_or_clear(existing):
                return self
            self._start_fresh()
        return self

    def down(self) -> bool:
        if not (self.root / STATE_FILE).is_file():
            log.info("no cluster harness running under %s", self.root)
            return False
        with self._lock():
            state = _load_state(self.root)
            if state is None:
                return False
            self._stop(state)
            (self.root / STATE_FILE).unlink(missing_ok=True)
            self._state = None
            self.reused = False
        log.info("cluster harness under %s is down", self.root)
        return True

    def restart(self, component: str) -> None:
        """Stop one component and start it again on the same port (fault tests)."""
        state = self.state
        server = state.servers[component]
        stop_group(component, server.ref, timeout=self.stop_timeout)
        self._start_component(state, component)

    def stop_component(self, component: str) -> None:
        stop_group(component, self.state.servers[component].ref, timeout=self.stop_timeout)

    def start_component(self, component: str) -> None:
        self._start_component(self.state, component)

    def __enter__(self) -> Cluster:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.reused:
            self.down()

    def healthy(self) -> dict[str, bool]:
        state = _load_state(self.root)
        if state is None:
            return {}
        specs = self._control_plane(state).specs()
        return {
            name: state.servers[name].ref.is_alive()
            and is_healthy(specs[name].health_url, verify=specs[name].health_verify)
            for name in state.servers
        }

    # ------------------------------------------------------------------ internals
    def _control_plane(self, state: ClusterState) -> cp.ControlPlane:
        return cp.ControlPlane(self.root, self.pki, state.ports, self.tools_dir)

    def _adopt_or_clear(self, existing: ClusterState) -> bool:
        self._state = existing
        health = self.healthy()
        if set(health) == set(cp.COMPONENTS) and all(health.values()):
            self.reused = True
            log.info("a healthy cluster harness already runs under %s; reusing it", self.root)
            return True
        if not any(s.ref.is_alive() for s in existing.servers.values()):
            (self.root / STATE_FILE).unlink(missing_ok=True)
            self._state = None
            return False
        self._state = None
        described = ", ".join(f"{n} {'healthy' if ok else 'unhealthy'}" for n, ok in health.items())
        raise StackConflictError(
            f"a partly running cluster harness is recorded under {self.root} ({described}); "
            f"stop it with `devstack cluster down --root {self.root}` and start it again"
        )

    def _start_fresh(self) -> None:
        for binary in cp.BINARIES:
            cp.find_binary(binary, self.tools_dir)  # one clear error before anything starts
        taken: set[int] = set()
        ports: dict[str, int] = {}
        for name in cp.PORT_NAMES:
            preferred = self.apiserver_port if name == cp.APISERVER else None
            ports[name] = choose_port(name, preferred, avoid=taken)
            taken.add(ports[name])
        state = ClusterState(root=str(self.root), ports=ports)
        server = f"https://{HOST}:{ports[cp.APISERVER]}"
        if self.pki.exists():
            write_kubeconfigs(self.pki, server)
        else:
            create_pki(self.pki.folder, server)
        shutil.copyfile(self.pki.kubeconfig("admin"), self.kubeconfig)
        self.kubeconfig.chmod(0o600)

        started_at = time.monotonic()
        self.timings = {}
        self._state = state
        try:
            for component in cp.COMPONENTS:
                self._start_component(state, component)
            ready_at = time.monotonic()
            self._register_nodes()
            self._wait_until_ready()
            self.timings["nodes_ready"] = time.monotonic() - ready_at
        except BaseException:
            log.error("cluster start-up failed or was interrupted; stopping what was started")
            self._stop(state)
            (self.root / STATE_FILE).unlink(missing_ok=True)
            self._state = None
            raise
        self.timings["up"] = time.monotonic() - started_at
        log.info(
            "cluster harness up in %.1fs: API server %s, kubeconfig %s",
            self.timings["up"],
            server,
            self.kubeconfig,
        )

    def _start_component(self, state: ClusterState, component: str) -> None:
        spec = self._control_plane(state).specs()[component]
        started_at = time.monotonic()
        ref = spawn(spec)
        state.servers[component] = ServerState(
            pid=ref.pid,
            started_at=ref.started_at,
            port=state.ports[component],
            health_url=spec.health_url,
            log=str(spec.log_path),
        )
        _save_state(self.root, state)
        wait_until_healthy(spec, ref, self.start_timeout)
        self.timings[component] = time.monotonic() - started_at
        log.debug("%s healthy in %.1fs", component, self.timings[component])

    def _register_nodes(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.api_client())
        for node in self.nodes if self.nodes is not None else pool_nodes():
            try:
                core.create_node(node.manifest())
            except ApiException as exc:
                if exc.status != 409:  # already registered (a restarted harness)
                    raise

    def _wait_until_ready(self) -> None:
        """Every node Ready without not-ready taints, and the `default` ServiceAccount there."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.api_client())
        deadline = time.monotonic() + self.ready_timeout
        waiting = "the API server"
        while time.monotonic() < deadline:
            try:
                waiting = _not_ready_yet(core)
            except ApiException as exc:
                waiting = f"the API server ({exc.reason})"
            if not waiting:
                return
            time.sleep(0.5)
        logs = self.root / "logs"
        raise ServerStartError(
            f"the cluster harness was not ready within {self.ready_timeout:.0f}s: still waiting "
            f"for {waiting}; see the logs in {logs} (kwok.log for nodes, "
            "kube-controller-manager.log for taints and service accounts)"
        )

    def _stop(self, state: ClusterState) -> None:
        for name in reversed(cp.COMPONENTS):
            server = state.servers.get(name)
            if server is not None:
                stop_group(name, server.ref, timeout=self.stop_timeout)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.root / ".cluster.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _not_ready_yet(core: Any) -> str:
    """What the harness still waits for ('' when ready)."""
    for node in core.list_node().items:
        conditions = {c.type: c.status for c in node.status.conditions or []}
        if conditions.get("Ready") != "True":
            return f"node {node.metadata.name} to report Ready (kwok)"
        taints = [t.key for t in node.spec.taints or [] if t.key in NOT_READY_TAINTS]
        if taints:
            return f"the node lifecycle controller to lift {taints[0]} from {node.metadata.name}"
    accounts = core.list_namespaced_service_account("default").items
    if not any(a.metadata.name == "default" for a in accounts):
        return "the ServiceAccount default/default (controller-manager)"
    return ""


def _load_state(root: Path) -> ClusterState | None:
    path = root / STATE_FILE
    return ClusterState.from_json(path.read_text()) if path.is_file() else None


def _save_state(root: Path, state: ClusterState) -> None:
    tmp = root / (STATE_FILE + ".tmp")
    tmp.write_text(state.to_json())
    tmp.replace(root / STATE_FILE)
