"""How each control-plane process of the harness is started and checked.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, all on 127.0.0.1 with
ports chosen free, state under one root. The binaries are built by `make cluster-tools` into
`.tools/bin` from the pins in `k8s/harness/*/go.mod`.

The API server runs as a real cluster's does where it matters to the tests — client-certificate
authentication, `Node,RBAC` authorization, the default admission plugins (Pod Security,
ResourceQuota, Priority, ServiceAccount …) — and differs where loopback needs it:
`--endpoint-reconciler-type=none` (the `kubernetes` Service endpoints would point at
127.0.0.1), no kubelets (kwok stands in for them; its stages are `k8s/harness/kwok/stages.yaml`)
and, instead of a cloud's volume provisioner, `devstack.cluster.provisioner`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devstack.cluster.pki import Pki
from devstack.errors import ToolMissingError
from devstack.paths import is_executable, repo_root, tools_bin
from devstack.ports import HOST
from devstack.process import ServerSpec

ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK, PROVISIONER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "volume-provisioner",
)
# Start order; stopped in reverse.
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK, PROVISIONER)
BINARIES = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK, "kubectl")
# Each component's ports; etcd also needs a peer port.
PORT_NAMES = (*COMPONENTS, "etcd-peer")

SERVICE_CIDR = "10.96.0.0/16"
# Simulated kubelets are on loopback: anything that tries to reach one (logs, exec) stays on
# this machine. Pod addresses may not be loopback ones (Endpoints reject them): they come from
# 198.18.0.0/15, a range reserved for benchmarking that is never routed, and nothing dials them.
POD_CIDR = "198.18.0.1/16"
NODE_IP = "127.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Nodes with this annotation are kwok's; the harness's node factory sets it.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# How long a simulated node's lease lasts; kwok renews it. Without a lease the
# controller-manager marks the nodes NotReady after its grace period.
NODE_LEASE_SECONDS = 40


def kwok_stages_file() -> Path:
    return repo_root() / "k8s" / "harness" / "kwok" / "stages.yaml"


def find_binary(name: str, tools_dir: Path | None = None) -> Path:
    candidate = (tools_dir or tools_bin()) / name
    if is_executable(candidate):
        return candidate
    raise ToolMissingError(
        f"{name} not found at {candidate}; run `make cluster-tools` to build the cluster "
        "harness (etcd, the Kubernetes control plane and kwok; ~17 min the first time)"
    )


@dataclass(frozen=True)
class ControlPlane:
    """Everything the specs need: binaries folder, state root, certificates and ports."""

    root: Path
    pki: Pki
    ports: dict[str, int]
    tools_dir: Path | None = None

    @property
    def server_url(self) -> str:
        return f"https://{HOST}:{self.ports[APISERVER]}"

    def _env(self) -> dict[str, str]:
        # No inherited KUBECONFIG, proxies or cloud credentials: each process gets its flags.
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}

    def _spec(self, name: str, args: list[str], health_url: str, verify: str | bool) -> ServerSpec:
        return ServerSpec(
            name=name,
            argv=[*self._executable(name), *args],
            env=self._env(),
            log_path=self.root / "logs" / f"{name}.log",
            health_url=health_url,
            health_verify=verify,
        )

    def _executable(self, name: str) -> list[str]:
        if name == PROVISIONER:
            return [sys.executable, "-m", "devstack.cluster.provisioner"]
        return [str(find_binary(name, self.tools_dir))]

    def specs(self) -> dict[str, ServerSpec]:
        return {
            ETCD: self.etcd(),
            APISERVER: self.apiserver(),
            CONTROLLER_MANAGER: self.controller_manager(),
            SCHEDULER: self.scheduler(),
            KWOK: self.kwok(),
            PROVISIONER: self.provisioner(),
        }

    def etcd(self) -> ServerSpec:
        client = f"http://{HOST}:{self.ports[ETCD]}"
        peer = f"http://{HOST}:{self.ports['etcd-peer']}"
        return self._spec(
            ETCD,
            [
                "--name=harness",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=harness={peer}",
                # A throw-away test store: durability is not worth an fsync per write.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            f"{client}/health",
            True,
        )

    def apiserver(self) -> ServerSpec:
        pki = self.pki
        return self._spec(
            APISERVER,
            [
                f"--etcd-servers=http://{HOST}:{self.ports[ETCD]}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={self.ports[APISERVER]}",
                "--endpoint-reconciler-type=none",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                f"--client-ca-file={pki.ca_cert}",
                f"--tls-cert-file={pki.apiserver_cert}",
                f"--tls-private-key-file={pki.apiserver_key}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.service_account_pub}",
                f"--service-account-signing-key-file={pki.service_account_key}",
                f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
                f"--proxy-client-key-file={pki.front_proxy_client_key}",
                "--profiling=false",
                "--event-ttl=1h",
            ],
            f"{self.server_url}/readyz",
            str(pki.ca_cert),
        )

    def _component_flags(self, client: str, component: str) -> list[str]:
        kubeconfig = self.pki.kubeconfig(client)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={HOST}",
            f"--secure-port={self.ports[component]}",
            f"--tls-cert-file={self.pki.serving_cert(component)}",
            f"--tls-private-key-file={self.pki.serving_key(component)}",
            "--leader-elect=false",
        ]

    def controller_manager(self) -> ServerSpec:
        return self._spec(
            CONTROLLER_MANAGER,
            [
                *self._component_flags("controller-manager", CONTROLLER_MANAGER),
                f"--service-account-private-key-file={self.pki.service_account_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                "--use-service-account-credentials=true",
                "--cluster-name=ml-platform-harness",
            ],
            f"https://{HOST}:{self.ports[CONTROLLER_MANAGER]}/healthz",
            str(self.pki.ca_cert),
        )

    def scheduler(self) -> ServerSpec:
        return self._spec(
            SCHEDULER,
            self._component_flags("scheduler", SCHEDULER),
            f"https://{HOST}:{self.ports[SCHEDULER]}/healthz",
            str(self.pki.ca_cert),
        )

    def kwok(self) -> ServerSpec:
        key, value = KWOK_NODE_ANNOTATION
        return self._spec(
            KWOK,
            [
                f"--kubeconfig={self.pki.kubeconfig('kwok')}",
                f"--config={kwok_stages_file()}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                f"--server-address={HOST}:{self.ports[KWOK]}",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
            ],
            f"http://{HOST}:{self.ports[KWOK]}/healthz",
            True,
        )

    def provisioner(self) -> ServerSpec:
        return self._spec(
            PROVISIONER,
            [
                f"--kubeconfig={self.pki.kubeconfig('admin')}",
                f"--health-port={self.ports[PROVISIONER]}",
            ],
            f"http://{HOST}:{self.ports[PROVISIONER]}/healthz",
            True,
        )
