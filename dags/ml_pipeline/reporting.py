"""Build the run summary the notification carries (and `make demo` prints)."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any
from urllib.parse import quote

from ml_pipeline.types import BestTrial, RunSummary

log = logging.getLogger(__name__)


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
