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

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.cluster import control_plane as cp
from devstack.cluster.nodes import SimulatedNode, pool_nodes
from devstack.cluster.pki import Pki, create_pki, write_kubeconfigs
from devstack.errors import ServerStartError
from devstack.paths import default_root
from devstack.ports import HOST, choose_port
from devstack.process import is_healthy, stop_group
from devstack.state import RecordedState
from devstack.supervisor import Supervisor

log = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
KUBECONFIG = "kubeconfig"
DEFAULT_APISERVER_PORT = 6443
NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


@dataclass(kw_only=True)
class ClusterState(RecordedState):
    """What `cluster.json` records: the ports and each started process group."""

    ports: dict[str, int]


def default_cluster_root() -> Path:
    return default_root() / "cluster"


class Cluster(Supervisor[ClusterState]):
    """The harness under `root`; see the module docstring and `devstack.supervisor`."""

    kind = "cluster harness"
    command = "devstack cluster"
    state_type = ClusterState
    state_file = STATE_FILE
    lock_file = ".cluster.lock"

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
        super().__init__(
            root,
            default_root=default_cluster_root(),
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
        )
        self.apiserver_port = apiserver_port
        self.nodes = nodes
        self.tools_dir = tools_dir
        self.ready_timeout = ready_timeout

    # ------------------------------------------------------------------ paths
    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def kubeconfig(self) -> Path:
        """The administrator's kubeconfig (`system:masters`)."""
        return self.root / KUBECONFIG

    @property
    def server_url(self) -> str:
        return f"https://{HOST}:{self.state.ports[cp.APISERVER]}"

    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def api_client(self) -> Any:
        """A `kubernetes.client.ApiClient` authenticated as the administrator."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    # ------------------------------------------------------------------ components
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

    def healthy(self) -> dict[str, bool]:
        """Each recorded component: alive and answering its health check (empty: none runs)."""
        state = self._load_state()
        if state is None:
            return {}
        return {name: alive and ok for name, (alive, ok) in self._health(state).items()}

    # ------------------------------------------------------------------ internals
    def _control_plane(self, state: ClusterState) -> cp.ControlPlane:
        return cp.ControlPlane(self.root, self.pki, state.ports, self.tools_dir)

    def _wanted(self, recorded: set[str]) -> set[str]:
        return set(cp.COMPONENTS)

    def _is_healthy(self, state: ClusterState, name: str) -> bool:
        spec = self._control_plane(state).specs()[name]
        return is_healthy(spec.health_url, verify=spec.health_verify)

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
            self._stop_and_forget(state)
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
        self._start_server(state, spec, state.ports[component])

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
