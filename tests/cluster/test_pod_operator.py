"""The KubernetesPodOperator (the pipeline's TrainerPodOperator) against the real API server.

A pipeline task runs through the operator's own code: it creates its pod, kwok runs it to
completion, the operator sees it finish and deletes it — synchronously, and deferred, where the
KubernetesPodTrigger polls the API server. A deferred task that is killed, or outlives its
execution timeout, deletes its pod. The operator authenticates as the Airflow worker's
ServiceAccount (a stand-in for the one the official Airflow chart creates), so the chart's
pod-launcher RBAC is what it has.

What kwok cannot serve is switched off here and covered elsewhere: container logs (`get_logs`)
and the XCom sidecar's `exec` (`do_xcom_push`) need a kubelet; the pod spec tests
(tests/dags/test_pod_specs.py) check that the DAG asks for both, and the local runtime runs the
same XCom contract end to end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cluster_support import platform_config_of, service_account_kubeconfig, wait_for
from devstack.dag_pods import (
    TRAIN_TASK,
    TRAINING_DAG,
    parse_pipeline,
    task_context,
    train_arguments,
)

CONNECTION = "AIRFLOW_CONN_KUBERNETES_DEFAULT"


@pytest.fixture(scope="module")
def dag(cluster, platform, core, tmp_path_factory) -> Iterator[Any]:
    """The training DAG with the release's platform config, whose pod tasks talk to the
    harness as the Airflow worker's ServiceAccount."""
    folder = tmp_path_factory.mktemp("operator")
    account = platform.values["airflow"]["workers"]["kubernetes"]["serviceAccount"]["name"]
    core.create_namespaced_service_account(platform.namespace, {"metadata": {"name": account}})
    kubeconfig = service_account_kubeconfig(
        cluster, platform.namespace, account, folder / "kubeconfig"
    )
    config = folder / "platform.json"
    config.write_text(json.dumps(platform_config_of(cluster, platform)))
    connection = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}
    )
    with parse_pipeline(
        "kubernetes", ML_PLATFORM_CONFIG=str(config), **{CONNECTION: connection}
    ) as bag:
        yield bag.dags[TRAINING_DAG]
    core.delete_namespaced_service_account(account, platform.namespace)


def _runnable(dag, task_id: str) -> tuple[Any, dict[str, Any]]:
    """The task as a worker runs it: rendered for a run, logs and XCom off (see the docstring)."""
    task = dag.get_task(task_id)
    map_index = -1
    if task.is_mapped:
        task = task.unmap({"arguments": train_arguments()})
        map_index = 0
    context = task_context(dag, task, map_index=map_index, gpu_profile="a100")
    context["ti"].start_date = datetime.now(UTC)
    task.render_template_fields(context)
    task.get_logs = False
    task.do_xcom_push = False
    return task, context


def _pods_of(core, task, context) -> list[Any]:
    selector = ",".join(f"{k}={v}" for k, v in task._get_ti_pod_labels(context).items())
    return core.list_namespaced_pod(task.namespace, label_selector=selector).items


def _until_gone(core, task, context) -> None:
    wait_for(
        lambda: _pods_of(core, task, context), lambda pods: not pods, what="the pod to be deleted"
    )


def _deferred(task, context) -> Any:
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    return deferred.value


async def _first_event(trigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def test_a_pod_task_runs_to_completion_and_deletes_its_pod(dag, core):
    task, context = _runnable(dag, "data_preparation.validate_data")
    assert task.deferrable is False
    task.execute(context)
    assert context["ti"].pushed["pod_namespace"] == task.namespace
    _until_gone(core, task, context)  # on_finish_action=delete_pod


def test_a_deferred_training_pod_is_watched_by_its_trigger_then_deleted(dag, core):
    task, context = _runnable(dag, TRAIN_TASK)
    deferred = _deferred(task, context)
    (pod,) = _pods_of(core, task, context)
    assert pod.spec.node_name is None or pod.spec.node_selector["gpu-type"] == "a100"
    event = asyncio.run(_first_event(deferred.trigger))  # polls the real API server
    assert event["status"] == "success", event
    task.trigger_reentry(context, event)
    _until_gone(core, task, context)


def test_killing_a_deferred_task_deletes_its_pod(dag, core):
    task, context = _runnable(dag, TRAIN_TASK)
    trigger = _deferred(task, context).trigger
    assert len(_pods_of(core, task, context)) == 1
    asyncio.run(trigger.on_kill())  # what the triggerer calls when a user kills the task
    _until_gone(core, task, context)


def test_a_deferred_task_past_its_execution_timeout_fails_and_deletes_its_pod(dag, core):
    from airflow.providers.common.compat.sdk import AirflowException

    task, context = _runnable(dag, TRAIN_TASK)
    trigger = _deferred(task, context).trigger
    trigger.trigger_kwargs["_execution_deadline"] = int(time.time()) - 1
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "timeout", event
    with pytest.raises(AirflowException):
        task.trigger_reentry(context, event)
    _until_gone(core, task, context)
