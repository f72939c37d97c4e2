"""Least privilege, decided by the real authorizer (`Node,RBAC`) of the installed release.

Each question is a SubjectAccessReview: "may this ServiceAccount do this?". The accounts are
the ones the release binds: the Airflow workers and triggerer that launch the pipeline's pods
(their ServiceAccounts belong to the official Airflow chart; the bindings to this chart), the
taint reconciler, and the default accounts of the pods the pipeline and the model server run as.
"""

from __future__ import annotations

from typing import Any

import pytest
from cluster_support import platform_config_of
from kubernetes import client

POD_LAUNCHER_RIGHTS = [
    ("create", "pods", ""),
    ("get", "pods", ""),
    ("list", "pods", ""),
    ("watch", "pods", ""),
    ("delete", "pods", ""),
    ("patch", "pods", ""),
    ("get", "pods", "log"),
    ("create", "pods", "exec"),
    ("list", "events", ""),
]


def _allowed(
    cluster: Any,
    account: str,
    verb: str,
    resource: str,
    namespace: str = "",
    subresource: str = "",
    group: str = "",
) -> bool:
    namespace_of, name = account.split(":")
    attributes = {"verb": verb, "resource": resource, "group": group}
    if namespace:
        attributes["namespace"] = namespace
    if subresource:
        attributes["subresource"] = subresource
    review = client.AuthorizationV1Api(cluster.api_client()).create_subject_access_review(
        {
            "spec": {
                "user": f"system:serviceaccount:{namespace_of}:{name}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace_of}"],
                "resourceAttributes": attributes,
            }
        }
    )
    return bool(review.status.allowed)


def _pod_launchers(platform: Any) -> list[str]:
    airflow = platform.values["airflow"]
    names = [
        airflow["workers"]["kubernetes"]["serviceAccount"]["name"],
        airflow["triggerer"]["serviceAccount"]["name"],
    ]
    return [f"{platform.namespace}:{n}" for n in names]


def _pipeline_namespaces(platform: Any) -> list[str]:
    return [platform.values["namespaces"]["training"], platform.values["namespaces"]["serving"]]


def test_pod_launchers_run_follow_and_delete_pods_in_the_pipeline_namespaces(cluster, platform):
    for account in _pod_launchers(platform):
        for namespace in _pipeline_namespaces(platform):
            missing = [
                (verb, resource, sub)
                for verb, resource, sub in POD_LAUNCHER_RIGHTS
                if not _allowed(cluster, account, verb, resource, namespace, sub)
            ]
            assert missing == [], f"{account} lacks {missing} in {namespace}"


@pytest.mark.parametrize("where", ["release", "default", "kube-system"])
def test_pod_launchers_cannot_run_pods_anywhere_else(cluster, platform, where):
    namespace = platform.namespace if where == "release" else where
    for account in _pod_launchers(platform):
        assert not _allowed(cluster, account, "create", "pods", namespace)
        assert not _allowed(cluster, account, "create", "pods", namespace, "exec")


def test_pod_launchers_cannot_read_secrets_or_touch_nodes(cluster, platform):
    for account in _pod_launchers(platform):
        for namespace in _pipeline_namespaces(platform):
            assert not _allowed(cluster, account, "get", "secrets", namespace)
            assert not _allowed(cluster, account, "list", "secrets", namespace)
        assert not _allowed(cluster, account, "patch", "nodes")


def _reconciler(cluster: Any, platform: Any) -> str:
    (deployment,) = [
        o
        for o in platform.live(cluster)
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("taint-reconciler")
    ]
    return f"{platform.namespace}:{deployment['spec']['template']['spec']['serviceAccountName']}"


def test_reconciler_can_keep_taints_on_nodes_and_nothing_more(cluster, platform):
    account = _reconciler(cluster, platform)
    for verb in ("get", "list", "watch", "patch"):
        assert _allowed(cluster, account, verb, "nodes"), f"the reconciler cannot {verb} nodes"
    assert not _allowed(cluster, account, "delete", "nodes")
    assert not _allowed(cluster, account, "update", "nodes", subresource="status")
    for namespace in ("", platform.namespace, "kube-system"):
        assert not _allowed(cluster, account, "get", "secrets", namespace)
        assert not _allowed(cluster, account, "list", "secrets", namespace)
    assert not _allowed(cluster, account, "create", "pods", platform.namespace)


def _api_free_accounts(cluster: Any, platform: Any) -> list[tuple[str, str]]:
    """(account, namespace) of the pods that need no API: the pipeline's pods (validate …
    deploy, as `<release>-pipeline`) and the model server, each where it runs."""

    config = platform_config_of(cluster, platform)
    accounts = [
        (f"{ns}:{config['serviceAccountName']}", ns) for ns in _pipeline_namespaces(platform)
    ]
    for obj in platform.live(cluster):
        if obj["kind"] == "Deployment" and obj["metadata"]["name"].endswith("model-server"):
            ns = obj["metadata"]["namespace"]
            accounts.append((f"{ns}:{obj['spec']['template']['spec']['serviceAccountName']}", ns))
    return accounts


def test_pipeline_pods_and_the_model_server_have_no_api_rights(cluster, platform):
    """They talk to MLflow and S3 only: promotion moves an MLflow alias, and the model server
    follows it by itself (no rollout restart, so nobody may patch its Deployment)."""
    accounts = _api_free_accounts(cluster, platform)
    assert len(accounts) == 3
    for account, namespace in accounts:
        for verb, resource, group in [
            ("list", "pods", ""),
            ("get", "secrets", ""),
            ("get", "configmaps", ""),
            ("get", "deployments", "apps"),
            ("patch", "deployments", "apps"),
        ]:
            assert not _allowed(cluster, account, verb, resource, namespace, group=group), (
                f"{account} may {verb} {resource}"
            )


def test_pod_launchers_cannot_restart_the_model_server(cluster, platform):
    serving = platform.values["namespaces"]["serving"]
    for account in _pod_launchers(platform):
        assert not _allowed(cluster, account, "patch", "deployments", serving, group="apps")
