"""
### ml_model_rollback — put a known-good model back in production (manual)

```
rollback_model ─> notify_rollback
```

Trigger it with the Params form (or the REST API / `airflow dags trigger --conf`):

* `model` — the registered model (default: the platform's);
* `target_version` — the version to make `champion`; empty: the one under `previous`
  (the champion the last deploy replaced);
* `reason` — recorded on both versions in MLflow and in the message.

`rollback_model` runs `trainer rollback` in the serving namespace: it loads the target version
the way the model server does and scores a row first, then moves `champion` and clears
`previous` (a second rollback cannot re-promote the bad version); the versions are tagged
with who (the triggering user and this run), when and why. A model server that follows the
`champion` alias serves it on its next poll. `notify_rollback` posts what changed; a failure
posts why (the aliases are left as they were when the target cannot be served).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from ml_pipeline.config import pipeline_settings, platform_config
from ml_pipeline.notify import FailureWebhookNotifier
from ml_pipeline.params import default_args, param, with_params
from ml_pipeline.pod_tasks import pod_task

cfg = platform_config()
settings = pipeline_settings()
log = logging.getLogger(__name__)


def rollback_arguments(params: dict[str, Any]) -> list[str]:
    """`trainer rollback` arguments from the Params (`--to-version` only when one is given)."""
    arguments = ["--model-name", str(params["model"]), "--reason", str(params["reason"])]
    if params.get("target_version") is not None:
        arguments += ["--to-version", str(int(params["target_version"]))]
    return arguments


@dag(
    dag_id="ml_model_rollback",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={**default_args(settings), "retries": 1},
    # `arguments` renders to a list: one template for the whole command line.
    render_template_as_native_obj=True,
    user_defined_macros={"rollback_arguments": rollback_arguments},
    tags=["ml", "serving", "rollback"],
    doc_md=__doc__,
    on_failure_callback=FailureWebhookNotifier(),
)
def ml_model_rollback():
    rollback_model = pod_task(
        "rollback_model",
        "rollback",
        "{{ rollback_arguments(params) }}",  # type: ignore[arg-type]
        namespace="serving",
        read_only_volume=True,
        execution_timeout=timedelta(minutes=15),
    )

    @task
    def notify_rollback(result: dict[str, Any], **context: Any) -> dict[str, Any]:
        from ml_pipeline.notify import send

        dag_run = context["dag_run"]
        who = getattr(dag_run, "triggering_user_name", None) or "someone"
        text = (
            f":leftwards_arrow_with_hook: *{result['model_name']}* rolled back by {who}: "
            f"`champion` is version {result['version']} (was {result['previous_version']}); "
            f"reason: {context['params']['reason']} ({dag_run.run_id})"
        )
        delivered = send(text)
        return {**result, "notified": delivered}

    notify_rollback(rollback_model.output)


with_params(
    ml_model_rollback(),
    {
        "model": param(cfg.model_name, "Registered model.", {"type": "string", "minLength": 1}),
        "target_version": param(
            None,
            "Version to make champion; empty: the one under the `previous` alias.",
            {"type": ["null", "integer"], "minimum": 1},
        ),
        "reason": param(
            "manual rollback",
            "Why (recorded on the versions in MLflow and in the notification).",
            {"type": "string", "minLength": 1},
        ),
    },
)
