"""`deploy` and `rollback`: promotion by registered-model alias (stages are deprecated).

deploy   registers the run's model (a rerun for the same run reuses its version), points
         `champion` at it and `previous` at the champion it replaces, records who / when /
         why on the version, then loads `models:/<name>@champion` the way serving will and
         scores sample rows of the test split. If that smoke test fails, both aliases are
         put back and the command fails.
rollback points `champion` back at `previous` — or at the version `--to-version` names —
         (after the same kind of smoke test) and clears `previous`, so a second rollback
         cannot re-promote the bad version.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_trainer import contract, tracking
from ml_trainer.errors import TrainerError
from ml_trainer.evaluate import CHAMPION, PREVIOUS, EvalSplit, load_test_split, predict_logits
from ml_trainer.storage import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_SMOKE_ROWS = 32
REGISTRATION_TIMEOUT_S = 120


def default_actor() -> str:
    """Who is deploying: $DEPLOYED_BY (the DAG passes its run), else user@host."""
    return os.environ.get("DEPLOYED_BY") or f"{getpass.getuser()}@{socket.gethostname()}"


def deployment_source() -> dict[str, str]:
    """`deployed_git_sha` / `deployed_image_tag` from $GIT_SHA / $IMAGE_TAG (set by the DAG:
    the DAG bundle version and the trainer image of the deploying run), when set."""
    source = {
        "deployed_git_sha": os.environ.get("GIT_SHA", ""),
        "deployed_image_tag": os.environ.get("IMAGE_TAG", ""),
    }
    return {key: value for key, value in source.items() if value}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Aliases:
    """The two aliases' versions (None = alias not set)."""

    champion: str | None
    previous: str | None


def read_aliases(client: Any, model_name: str) -> Aliases:
    aliases = client.get_registered_model(model_name).aliases or {}
    return Aliases(aliases.get(CHAMPION), aliases.get(PREVIOUS))


def write_aliases(client: Any, model_name: str, aliases: Aliases) -> None:
    for alias, version in ((CHAMPION, aliases.champion), (PREVIOUS, aliases.previous)):
        if version is None:
            current = (client.get_registered_model(model_name).aliases or {}).get(alias)
            if current is not None:
                client.delete_registered_model_alias(model_name, alias)
        else:
            client.set_registered_model_alias(model_name, alias, version)


def ensure_registered_model(client: Any, model_name: str) -> None:
    from mlflow.exceptions import RestException

    try:
        client.get_registered_model(model_name)
    except RestException as exc:
        if not tracking.is_not_found(exc):
            raise
        try:
            client.create_registered_model(
                model_name,
                description="Digit classifier trained by ml-platform's training pipeline.",
            )
        except RestException as create_exc:  # created concurrently: fine
            if getattr(create_exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise


def find_or_register_version(client: Any, model_name: str, run_id: str) -> tuple[str, bool]:
    """(version, newly registered?) — the oldest version already registered from this run wins."""
    import mlflow

    existing = client.search_model_versions(f"name = '{model_name}' and run_id = '{run_id}'")
    if existing:
        version = min(existing, key=lambda v: int(v.version)).version
        log.info(
            "run %s is already registered as %s version %s: reusing it", run_id, model_name, version
        )
        return str(version), False
    source = tracking.logged_model_uri(run_id)
    registered = mlflow.register_model(
        source, model_name, await_registration_for=REGISTRATION_TIMEOUT_S
    )
    log.info("registered %s as %s version %s", source, model_name, registered.version)
    return str(registered.version), True


def smoke_test(model_name: str, rows: np.ndarray, labels: np.ndarray | None) -> str:
    """Load `models:/<name>@champion` like serving does and score `rows`; returns a summary."""
    uri = f"models:/{model_name}@{CHAMPION}"
    logits = predict_logits(uri, rows, "newly promoted champion", "see the cause above.")
    summary = f"loaded {uri} and scored {len(rows)} rows"
    if labels is not None:
        summary += f" (accuracy {(logits.argmax(axis=1) == labels).mean():.3f})"
    return summary


def deploy(
    run_id: str,
    model_name: str,
    data_path: str,
    reason: str = "",
    deployed_by: str | None = None,
    smoke_rows: int = DEFAULT_SMOKE_ROWS,
    store: ObjectStore | None = None,
) -> dict[str, Any]:
    from mlflow import MlflowClient

    store = store or ObjectStore()
    tracking.configure()
    tracking.check_reachable()
    split: EvalSplit = load_test_split(store, data_path)
    rows, labels = split.features[:smoke_rows], split.labels[:smoke_rows]
    client = MlflowClient()

    with tracking.mlflow_errors(f"register run {run_id} as {model_name!r} and move its aliases"):
        ensure_registered_model(client, model_name)
        version, _ = find_or_register_version(client, model_name, run_id)
        before = read_aliases(client, model_name)
        if before.champion == version:
            log.info("version %s is already the champion: aliases unchanged", version)
            after = before
        else:
            after = Aliases(champion=version, previous=before.champion)
            write_aliases(client, model_name, after)
            for key, value in {
                "deployed_by": deployed_by or default_actor(),
                "deployed_at": _now(),
                "deploy_reason": reason or "promoted by `trainer deploy`",
                "replaced_version": before.champion or "",
                **deployment_source(),
            }.items():
                client.set_model_version_tag(model_name, version, key, value)

    try:
        summary = smoke_test(model_name, rows, labels)
    except TrainerError as exc:
        with tracking.mlflow_errors(
            f"put the aliases of {model_name!r} back after a failed smoke test"
        ):
            write_aliases(client, model_name, before)
            client.set_model_version_tag(model_name, version, "smoke_test", f"failed {_now()}")
        raise TrainerError(
            f"Smoke test of {model_name} version {version} failed, aliases restored "
            f"(champion={before.champion}, previous={before.previous}): {exc.problem}",
            "the registered model cannot be served: check its artifacts in MLflow, retrain, "
            "and do not promote it by hand.",
        ) from exc
    with tracking.mlflow_errors(f"tag {model_name} version {version}"):
        client.set_model_version_tag(
            model_name, version, "smoke_test", f"passed {_now()}: {summary}"
        )
    log.info(
        "champion of %s is version %s (previous: %s); %s",
        model_name,
        version,
        after.previous,
        summary,
    )
    return {
        "model_name": model_name,
        "version": version,
        "alias": CHAMPION,
        "previous_version": after.previous,
        "model_uri": f"models:/{model_name}/{version}",
        "smoke_test_rows": len(rows),
    }


def rollback(
    model_name: str,
    reason: str = "",
    deployed_by: str | None = None,
    to_version: str | None = None,
) -> dict[str, Any]:
    from mlflow import MlflowClient

    tracking.configure()
    tracking.check_reachable()
    client = MlflowClient()
    with tracking.mlflow_errors(f"read the aliases of {model_name!r}"):
        from mlflow.exceptions import RestException

        try:
            before = read_aliases(client, model_name)
        except RestException as exc:
            if tracking.is_not_found(exc):
                raise TrainerError(
                    f"There is no registered model {model_name!r} to roll back.",
                    "check --model-name.",
                ) from exc
            raise
    target = to_version or before.previous
    if target is None:
        raise TrainerError(
            f"Registered model {model_name!r} has no {PREVIOUS!r} alias (champion: {before.champion}), "
            "so there is nothing to roll back to.",
            "pass --to-version with a known-good version, or deploy a known-good run with "
            "`trainer deploy --run-id R ...`.",
        )
    if to_version is not None:
        _require_version(client, model_name, to_version)
    if target == before.champion:
        raise TrainerError(
            f"Version {target} of {model_name!r} is already the champion: nothing to roll back.",
            "pass another --to-version, or leave the champion as it is.",
        )
    after = Aliases(champion=target, previous=None)
    actor, now = deployed_by or default_actor(), _now()
    with tracking.mlflow_errors(f"move alias {CHAMPION!r} of {model_name!r} back to {target}"):
        write_aliases(client, model_name, after)
    try:
        smoke_test(model_name, np.zeros((1, len(contract.FEATURE_COLUMNS)), dtype=np.float32), None)
    except TrainerError as exc:
        with tracking.mlflow_errors(f"put the aliases of {model_name!r} back"):
            write_aliases(client, model_name, before)
        raise TrainerError(
            f"Version {target} of {model_name} cannot be served, aliases left as they were: "
            f"{exc.problem}",
            "deploy another known-good run with `trainer deploy` instead.",
        ) from exc
    with tracking.mlflow_errors(f"tag the versions of {model_name!r}"):
        if before.champion is not None:
            for key, value in {
                "rolled_back_by": actor,
                "rolled_back_at": now,
                "rollback_reason": reason,
            }.items():
                client.set_model_version_tag(model_name, before.champion, key, value or "rollback")
        for key, value in {
            "restored_by": actor,
            "restored_at": now,
            "restore_reason": reason,
        }.items():
            client.set_model_version_tag(model_name, target, key, value or "rollback")
    log.info(
        "champion of %s rolled back from version %s to %s", model_name, before.champion, target
    )
    return {
        "model_name": model_name,
        "version": target,
        "alias": CHAMPION,
        "previous_version": before.champion,
    }


def _require_version(client: Any, model_name: str, version: str) -> None:
    from mlflow.exceptions import RestException

    with tracking.mlflow_errors(f"look up version {version} of {model_name!r}"):
        try:
            client.get_model_version(model_name, version)
        except RestException as exc:
            if tracking.is_not_found(exc):
                raise TrainerError(
                    f"Registered model {model_name!r} has no version {version}.",
                    "pass a version listed in MLflow's registry to --to-version.",
                ) from exc
            raise
