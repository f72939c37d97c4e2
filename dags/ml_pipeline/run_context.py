"""What a DAG run is about and who made it: its data date, and the audit trail for the trainer.

**The data date** (the partition `daily/<date>/` a run reads or lands) is, in this order:
1. the `data_date` Param, when the person who triggered the run set it;
2. the UTC day of the run's logical date: a scheduled `@daily` run, or a run triggered with a
   logical date (the UI's default is "now", so its day);
3. the UTC day of the run's `run_after`: a run triggered without a logical date (the REST API
   with `"logical_date": null`, `airflow dags trigger` without `-l`) runs for the day it was
   triggered.

Templates render it with the DAG macro `data_date` (`DATA_DATE`); Python reads it with
`context_data_date(context)`. The producer run of that day is the producer's run whose logical
date is that day at 00:00 UTC (its own `@daily` run, or one triggered with that logical date):
`upstream_logical_date` tells the ExternalTaskSensor so.

**The audit trail** (`audit_env`) goes to every trainer process as `DEPLOYED_BY`, `GIT_SHA` and
`IMAGE_TAG`, which the trainer writes as MLflow run tags and registered-version tags.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ml_pipeline.config import PlatformConfig, pipeline_settings

DATA_DATE_PARAM = "data_date"
# Rendered by the `data_date` macro that both DAGs register (`user_defined_macros`).
DATA_DATE = "{{ data_date(params, dag_run) }}"
LOCAL_IMAGE_TAG = "local"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DataDateError(ValueError):
    """The `data_date` Param is not a date."""


def data_date(params: Any, dag_run: Any) -> str:
    """The run's data date as `YYYY-MM-DD` (the rule in the module docstring)."""
    explicit = (params or {}).get(DATA_DATE_PARAM)
    if explicit:
        try:
            return date.fromisoformat(str(explicit)).isoformat()
        except ValueError:
            raise DataDateError(
                f"Param {DATA_DATE_PARAM}={explicit!r} is not a date YYYY-MM-DD; "
                "leave it empty to use the run's logical date (or trigger time)"
            ) from None
    when = getattr(dag_run, "logical_date", None) or dag_run.run_after
    return when.astimezone(UTC).date().isoformat()


def context_data_date(context: Any) -> str:
    return data_date(context.get("params"), context["dag_run"])


def upstream_logical_date(logical_date: datetime, offset: timedelta, **context: Any) -> datetime:
    """`execution_date_fn` of the ExternalTaskSensor: the producer run of the data date
    (its logical date at 00:00 UTC, moved by the DAGs' schedule `offset`)."""
    day = date.fromisoformat(data_date(context.get("params"), context["dag_run"]))
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + offset


def _image_tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.split("@", 1)[0].split(":", 1)[1] if ":" in name else "latest"


def audit_env(cfg: PlatformConfig, context: Any) -> dict[str, str]:
    """`DEPLOYED_BY`, `GIT_SHA`, `IMAGE_TAG` for the trainer, from the run's context.

    DEPLOYED_BY  `<who> via <dag_id>/<run_id>`: who = the user who triggered the run,
                 `scheduler` for a scheduled run, else `a <run type> run`;
    GIT_SHA      the DAG bundle version the run is pinned to (a GitDagBundle's commit); empty
                 for an unversioned bundle (the DAGs folder, git-sync);
    IMAGE_TAG    the trainer image's tag; `local` in the local runtime (no image).
    """
    dag_run = context["dag_run"]
    raw_type = getattr(dag_run, "run_type", "")
    run_type = str(getattr(raw_type, "value", raw_type))
    who = getattr(dag_run, "triggering_user_name", None) or (
        "scheduler" if run_type == "scheduled" else f"a {run_type} run"
    )
    bundle = getattr(context.get("ti"), "bundle_instance", None)
    return {
        "DEPLOYED_BY": f"{who} via {dag_run.dag_id}/{dag_run.run_id}",
        "GIT_SHA": str(getattr(bundle, "version", None) or ""),
        "IMAGE_TAG": (
            LOCAL_IMAGE_TAG if pipeline_settings().is_local else _image_tag(cfg.trainer_image)
        ),
    }


def path_safe(text: str) -> str:
    """A run id or task id as one S3 key segment (or one folder name)."""
    return _UNSAFE.sub("_", text).strip("_") or "run"
