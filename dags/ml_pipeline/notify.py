"""Notifications: the run summary and a Slack-compatible incoming-webhook notifier, for results
and failures.

The webhook URL comes from the Airflow connection named by `ML_PIPELINE_WEBHOOK_CONN_ID`
(default `ml_pipeline_webhook`): its password when that is a URL (the Slack provider's
convention), else its host when that is a URL, else `<conn_type>://<host>[:port]/<schema>`.
Without that connection, the Variable `ml_pipeline_webhook_url` is tried. With neither, the
message is logged and nothing is sent. Example:

    AIRFLOW_CONN_ML_PIPELINE_WEBHOOK='{"conn_type": "http", "password": "https://hooks.slack.com/services/…"}'

The payload is `{"text": …, "blocks": [...]}` (Slack's format; Mattermost, Rocket.Chat and
Teams' Slack-compatible endpoints accept `text`).

Delivery is retried (`RETRY_DELAYS_S`) and then given up with a warning, never an error: a
chat outage must not turn a run that deployed a model into a failed run (whose failure
message would then be about a notification, not about the model).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier
from ml_pipeline.config import pipeline_settings
from ml_pipeline.selection import BestTrial

log = logging.getLogger(__name__)

WEBHOOK_VARIABLE = "ml_pipeline_webhook_url"
TIMEOUT_S = 10
RETRY_DELAYS_S = (5.0, 20.0)  # seconds before the 2nd and the 3rd attempt
# The tasks that move the `champion` alias (training DAG, rollback DAG).
ALIAS_TASK_IDS = ("deploy_model", "rollback_model")


# ------------------------------------------------------------------------------ the run summary
@dataclass(frozen=True)
class RunSummary:
    """What `send_notification` reports (and returns, for `make demo`'s table)."""

    dag_id: str
    run_id: str
    date: str
    decision: str
    reason: str
    trials_planned: int | None = None
    trials_succeeded: int | None = None
    best_trial_id: str | None = None
    best_params: dict[str, Any] | None = None
    candidate_accuracy: float | None = None
    baseline_accuracy: float | None = None
    improvement: float | None = None
    champion_version: str | None = None
    previous_version: str | None = None
    mlflow_run_url: str | None = None
    mlflow_model_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _experiment_id(tracking_uri: str, run_id: str) -> str | None:
    """The experiment of a run, for a UI link (best effort: None when MLflow is unreachable).

    One REST call (`GET /api/2.0/mlflow/runs/get`) instead of importing the MLflow client.
    """
    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/runs/get?run_id={quote(run_id)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(json.load(response)["run"]["info"]["experiment_id"])
    except (OSError, ValueError, KeyError) as exc:
        log.warning("no experiment id for run %s (%s); the run link is left out", run_id, exc)
        return None


def build_summary(
    *,
    dag_id: str,
    run_id: str,
    ds: str,
    best: BestTrial | None,
    evaluation: dict[str, Any] | None,
    deployed: dict[str, Any] | None,
    model_name: str,
    tracking_uri: str,
    ui_url: str | None = None,
    resolve_links: bool = True,
) -> RunSummary:
    evaluation = evaluation or {}
    ui = (ui_url or tracking_uri).rstrip("/")
    decision = "deploy" if deployed else "skip"
    champion = deployed.get("version") if deployed else evaluation.get("champion_version")
    previous = deployed.get("previous_version") if deployed else None
    run_url = model_url = None
    if best is not None and resolve_links:
        experiment = _experiment_id(tracking_uri, best.run_id)
        if experiment is not None:
            run_url = f"{ui}/#/experiments/{experiment}/runs/{best.run_id}"
    if champion not in (None, ""):
        model_url = f"{ui}/#/models/{quote(model_name)}/versions/{champion}"
    return RunSummary(
        dag_id=dag_id,
        run_id=run_id,
        date=ds,
        decision=decision,
        reason=str(evaluation.get("reason", "")),
        trials_planned=best.trials_planned if best else None,
        trials_succeeded=best.trials_succeeded if best else None,
        best_trial_id=best.trial_id if best else None,
        best_params=best.params if best else None,
        candidate_accuracy=_float(evaluation.get("new_accuracy")),
        baseline_accuracy=_float(evaluation.get("baseline_accuracy")),
        improvement=_float(evaluation.get("improvement")),
        champion_version=None if champion in (None, "") else str(champion),
        previous_version=None if previous in (None, "") else str(previous),
        mlflow_run_url=run_url,
        mlflow_model_url=model_url,
    )


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------- delivery
class WebhookError(RuntimeError):
    """The webhook answered with an error or could not be reached."""


def _looks_like_url(value: str | None) -> bool:
    return bool(value) and value.startswith(("http://", "https://"))  # type: ignore[union-attr]


def webhook_url() -> str | None:
    """The configured webhook URL, or None (see the module docstring for the lookup order)."""
    from airflow.sdk import BaseHook, Variable

    conn_id = pipeline_settings().webhook_conn_id
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # not found (AirflowNotFoundException) or no secrets backend reachable
        conn = None
    if conn is not None:
        if _looks_like_url(conn.password):
            return conn.password
        if _looks_like_url(conn.host):
            return conn.host
        if conn.host:
            scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
            port = f":{conn.port}" if conn.port else ""
            path = (conn.schema or "").lstrip("/")
            return f"{scheme}://{conn.host}{port}/{path}"
    try:
        value = Variable.get(WEBHOOK_VARIABLE, default=None)
    except Exception:
        value = None
    return value if _looks_like_url(value) else None


def post_webhook(url: str, payload: dict[str, Any]) -> int:
    """POST JSON; returns the HTTP status, raises `WebhookError` on failure."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return int(response.status)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise WebhookError(f"webhook POST to {url.split('?')[0]} failed: {exc}") from exc


def send(text: str, blocks: list[dict[str, Any]] | None = None) -> bool:
    """Send a message; True when it was delivered. Failed attempts are retried, and a
    message that still cannot be delivered is logged as a warning (never raised)."""
    url = webhook_url()
    if url is None:
        log.info(
            "no webhook configured (connection %r or Variable %r); notification:\n%s",
            pipeline_settings().webhook_conn_id,
            WEBHOOK_VARIABLE,
            text,
        )
        return False
    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = blocks
    attempts = len(RETRY_DELAYS_S) + 1
    for attempt in range(1, attempts + 1):
        try:
            status = post_webhook(url, payload)
        except WebhookError as exc:
            if attempt == attempts:
                log.warning(
                    "notification not delivered after %d attempts (%s); the message was:\n%s",
                    attempts,
                    exc,
                    text,
                )
                return False
            delay = RETRY_DELAYS_S[attempt - 1]
            log.info("%s; attempt %d/%d in %.0fs", exc, attempt + 1, attempts, delay)
            time.sleep(delay)
            continue
        log.info("notification delivered (HTTP %s)", status)
        return True
    return False


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def summary_text(summary: RunSummary) -> str:
    icon = {"deploy": ":rocket:", "skip": ":zzz:"}.get(summary.decision, ":grey_question:")
    lines = [
        f"{icon} *{summary.dag_id}* {summary.date}: *{summary.decision}* — {summary.reason}",
        f"best trial {summary.best_trial_id} {summary.best_params or {}} "
        f"({summary.trials_succeeded}/{summary.trials_planned} trials succeeded)",
        f"candidate {_pct(summary.candidate_accuracy)} vs champion {_pct(summary.baseline_accuracy)}",
        f"champion version: {summary.champion_version or 'none'}"
        + (f" (previous {summary.previous_version})" if summary.previous_version else ""),
    ]
    if summary.mlflow_run_url:
        lines.append(f"MLflow run: {summary.mlflow_run_url}")
    if summary.mlflow_model_url:
        lines.append(f"MLflow model: {summary.mlflow_model_url}")
    return "\n".join(lines)


def send_summary(summary: RunSummary) -> bool:
    text = summary_text(summary)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    return send(text, blocks)


def deployment_outcome(context: Any) -> str:
    """What the run did to the champion, read from the task that moves the alias
    (`deploy_model` or `rollback_model`): its state and its XCom.

    A DAG without such a task deploys nothing. Reading the run's state can fail (no API
    reachable from where the callback runs): then the text says it is unknown.
    """
    dag = context.get("dag")
    task_ids = getattr(dag, "task_ids", None) or ()
    task_id = next((t for t in ALIAS_TASK_IDS if t in task_ids), None)
    if task_id is None:
        return "this DAG deploys no model; the champion is unchanged"
    ti = context.get("ti") or context.get("task_instance")
    run_id = getattr(context.get("dag_run"), "run_id", None) or context.get("run_id")
    try:
        moved = ti.xcom_pull(task_ids=task_id)
        states = ti.get_task_states(
            dag_id=getattr(dag, "dag_id", None), task_ids=[task_id], run_ids=[run_id]
        )
        state = (states.get(run_id) or {}).get(task_id)
    except Exception as exc:  # the callback must still say something useful
        log.warning("could not read the run's %s outcome: %s", task_id, exc)
        return (
            f"could not read whether {task_id} ran: check the run's {task_id} task and "
            "the champion alias in MLflow"
        )
    if isinstance(moved, dict) and moved.get("version"):
        previous = moved.get("previous_version")
        return (
            f"{task_id} DID make {moved.get('model_name', 'the model')} version "
            f"{moved['version']} the champion"
            + (f" (previous {previous})" if previous else "")
            + " before this failure"
        )
    if state in ("failed", "up_for_retry", "running"):
        return (
            f"{task_id} failed: a failed smoke test restores the aliases, an interrupted "
            f"{task_id} may not have; check which version `champion` points at in MLflow"
        )
    return "nothing was deployed by this run; the champion is unchanged"


def failure_text(context: Any) -> str:
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    run_id = getattr(dag_run, "run_id", "?")
    ds = context.get("ds") or "?"
    ti = context.get("ti") or context.get("task_instance")
    task = None
    if ti is not None:
        map_index = getattr(ti, "map_index", -1)
        task = ti.task_id + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
    reason = context.get("reason") or context.get("exception") or "a task failed"
    lines = [f":red_circle: *{dag_id}* {ds} failed ({run_id})"]
    if task:
        lines.append(f"failed task: {task}")
    lines.append(f"reason: {str(reason)[:500]}")
    lines.append(deployment_outcome(context))
    return "\n".join(lines)


class FailureWebhookNotifier(BaseNotifier):
    """`on_failure_callback` for the DAGs: tells the channel which run failed and why."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Nothing to template. (BaseNotifier would build a Jinja env from `context["dag"]`,
        # which `dag.test()` in Airflow 3.3 passes as a SerializedDAG that has none.)
        return None

    def notify(self, context: Any) -> None:
        send(failure_text(context))


async def deadline_missed(dag_id: str, minutes: int, context: dict[str, Any] | None = None) -> None:
    """Deadline-alert callback (runs in the triggerer): the run is late.

    Airflow 3.3 passes `context={"dag_run": {...DAG run as JSON...}, "deadline": {...}}`.
    """
    import asyncio

    dag_run = (context or {}).get("dag_run") or {}
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"
    text = (
        f":hourglass: *{dag_id}* run {run_id} is not done {minutes} min after it was queued "
        f"(state {dag_run.get('state', '?')}); check the Airflow UI for stuck tasks "
        "(pending GPU pods, sensors still waiting for data)"
    )
    await asyncio.to_thread(send, text)
