"""Helpers of the cluster tests (a plain module: tests/cluster is on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from devstack.paths import tools_bin

T = TypeVar("T")
REPO_TOOLS = tools_bin()
CHART_CI_VALUES = Path(__file__).resolve().parents[2] / "charts" / "ml-platform" / "ci"

# Generous: CI is a busy 2-core machine; a correct cluster answers in seconds.
DEFAULT_TIMEOUT = 90.0


def wait_for(
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.25,
) -> T:
    """Call `read` until `done(value)`; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {value}"
            )
        time.sleep(interval)
        value = read()
    return value


# ---------------------------------------------------------------- helm against the harness
HELM = REPO_TOOLS / "helm"


class CommandFailed(AssertionError):
    """helm or kubectl exited non-zero; the message carries the command and its stderr."""


def run_tool(
    binary: Path,
    *args: str,
    kubeconfig: Path,
    stdin: str | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(binary), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandFailed(f"{binary.name} {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
    return proc


@dataclass(frozen=True)
class Release:
    """An installed release: what helm printed on install and the values it computed."""

    name: str
    namespace: str
    install_stderr: str
    values: dict[str, Any]

    def live(self, cluster: Any) -> list[dict[str, Any]]:
        """Every object of the release as the API server holds it now."""
        return live_objects(cluster.api_client(), self.manifest(cluster.kubeconfig), self.namespace)

    def manifest(self, kubeconfig: Path) -> list[dict[str, Any]]:
        out = run_tool(
            HELM, "get", "manifest", self.name, "-n", self.namespace, kubeconfig=kubeconfig
        ).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def helm_install(
    kubeconfig: Path,
    chart: Path,
    name: str,
    namespace: str,
    *,
    values_files: tuple[Path, ...] = (),
    values: dict[str, Any] | None = None,
    verb: str = "install",
    timeout: str = "5m",
) -> Release:
    """`helm install|upgrade --wait` and the release's computed values."""
    args = [verb, name, str(chart), "-n", namespace, "--wait", "--timeout", timeout]
    if verb == "install":
        args.append("--create-namespace")
    for path in values_files:
        args += ["--values", str(path)]
    stdin = None
    if values:
        args += ["--values", "-"]
        stdin = yaml.safe_dump(values)
    proc = run_tool(HELM, *args, kubeconfig=kubeconfig, stdin=stdin)
    computed = run_tool(
        HELM, "get", "values", name, "-n", namespace, "--all", "-o", "json", kubeconfig=kubeconfig
    ).stdout
    return Release(name, namespace, proc.stderr, json.loads(computed))


def helm_uninstall(kubeconfig: Path, name: str, namespace: str) -> None:
    run_tool(HELM, "uninstall", name, "-n", namespace, "--wait", kubeconfig=kubeconfig)


def live_objects(
    api_client: Any,
    manifest: list[dict[str, Any]],
    namespace: str,
    *,
    ignore_not_found: bool = False,
) -> list[dict[str, Any]]:
    """The objects of `manifest` as the API server holds them now. A namespaced object without
    a namespace of its own is looked up in `namespace`, where helm installed it. A missing
    object fails the test unless `ignore_not_found` (then it is left out)."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError

    dynamic = DynamicClient(api_client)
    found = []
    for obj in manifest:
        resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        ns = (meta.get("namespace") or namespace) if resource.namespaced else None
        try:
            found.append(resource.get(name=meta["name"], namespace=ns).to_dict())
        except NotFoundError:
            if not ignore_not_found:
                raise AssertionError(
                    f"{obj['kind']} {ns + '/' if ns else ''}{meta['name']} is not in the API server"
                ) from None
    return found


def service_account_kubeconfig(cluster: Any, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ServiceAccount `namespace/name` (a TokenRequest
    token, 1 h): processes under test get exactly the rights the chart's RBAC gives them."""
    from kubernetes import client

    token = (
        client.CoreV1Api(cluster.api_client())
        .create_namespaced_service_account_token(
            name, namespace, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    user = f"system:serviceaccount:{namespace}:{name}"
    context = admin["contexts"][0]["context"]["cluster"]
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": context, "user": user}}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def platform_config_of(cluster: Any, release: Release) -> dict[str, Any]:
    """The release's `platform.json` as the API server holds it (ConfigMap `<release>-platform`)."""
    from kubernetes import client

    (configmap,) = [
        o
        for o in release.manifest(cluster.kubeconfig)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"{release.name}-platform"
    ]
    live = client.CoreV1Api(cluster.api_client()).read_namespaced_config_map(
        configmap["metadata"]["name"], configmap["metadata"].get("namespace") or release.namespace
    )
    return json.loads(live.data["platform.json"])
