"""Unit tests of `ml_pipeline`: search space, selection, config, settings, notifications."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dags_support import DAGS, REPO
from devstack.dag_pods import clear_pipeline_caches
from ml_pipeline.config import (
    PlatformConfigError,
    SettingsError,
    parse_platform_config,
    read_platform_config,
    read_settings,
)
from ml_pipeline.notify import RunSummary
from ml_pipeline.search import (
    MAX_MAP_LENGTH,
    SearchSpace,
    SearchSpaceError,
    mapped_trials,
    plan_trials,
    run_training_options,
    searchable_options,
    train_arguments,
)
from ml_pipeline.selection import BestTrial, NotEnoughTrials, select_best

SPACE = {"optimizer": ["adam", "sgd"], "lr": [0.001, 0.01], "batch_size": [32, 64]}
PARAMS = {"search_space": SPACE}
RUN_PARAMS = {"training": {"epochs": 5, "hidden_sizes": "128"}, "seed": 7}


# ------------------------------------------------------------------------ search space
def test_grid_is_the_cross_product_in_the_trainers_order_of_dimensions() -> None:
    # The Param's key order does not matter: dimensions follow the trainer's options.
    shuffled = {"batch_size": [32, 64], "lr": [0.001, 0.01], "optimizer": ["adam", "sgd"]}
    trials = plan_trials(SearchSpace.from_params({"search_space": shuffled}), "2024-01-01")
    assert [t.values for t in trials] == [
        {"optimizer": opt, "lr": lr, "batch_size": bs}
        for opt in ("adam", "sgd")
        for lr in (0.001, 0.01)
        for bs in (32, 64)
    ]
    assert trials[0].trial_id == "t00-adam-lr0.001-bs32"
    assert len({t.trial_id for t in trials}) == 8


def test_a_grid_larger_than_the_budget_is_refused_with_the_fix() -> None:
    space = SearchSpace.from_params({**PARAMS, "max_trials": 4})
    with pytest.raises(SearchSpaceError, match=r"grid has 8 trials.*search='random'"):
        plan_trials(space, "2024-01-01")


def test_random_search_respects_the_budget_the_ranges_and_is_reproducible_per_date() -> None:
    space_param = {
        **SPACE,
        "lr": {"min": 1e-4, "max": 1e-1, "log": True},
        "dropout": {"min": 0, "max": 0.5},
    }
    space = SearchSpace.from_params(
        {"search_space": space_param, "search": "random", "max_trials": 5}
    )
    first = plan_trials(space, "2024-01-01")
    assert len(first) == 5
    assert first == plan_trials(space, "2024-01-01")  # a rerun of the date draws the same
    assert first != plan_trials(space, "2024-01-02")
    for trial in first:
        assert 1e-4 <= trial.values["lr"] <= 1e-1
        assert 0 <= trial.values["dropout"] <= 0.5
        assert trial.values["batch_size"] in (32, 64)
        assert trial.values["optimizer"] in ("adam", "sgd")
        assert trial.trial_id.startswith(("t0", "t1")) and "-do" in trial.trial_id


def test_an_integer_range_draws_integers() -> None:
    space = SearchSpace.from_params(
        {
            "search_space": {**SPACE, "batch_size": {"min": 16, "max": 512, "log": True}},
            "search": "random",
            "max_trials": 8,
        }
    )
    sizes = [t.values["batch_size"] for t in plan_trials(space, "2024-01-01")]
    assert all(isinstance(b, int) and 16 <= b <= 512 for b in sizes)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"search_space": {**SPACE, "momentumm": [0.9]}}, "no dimension momentumm"),
        ({"search_space": {"optimizer": ["adam"]}}, "must give lr, batch_size"),
        ({"search_space": {**SPACE, "lr": []}}, "lr is an empty list"),
        ({"search_space": {**SPACE, "lr": [0.1, 0.1]}}, "lists a value twice"),
        ({"search_space": {**SPACE, "lr": {"min": 0.1, "max": 0.01}}}, "min 0.1 is above max"),
        ({"search_space": {**SPACE, "lr": {"min": 0, "max": 0.1, "log": True}}}, "log range"),
        ({"search_space": {**SPACE, "optimizer": {"min": 1, "max": 2}}}, "must be a list"),
        ({**PARAMS, "search": "bayes"}, "search must be one of"),
        ({**PARAMS, "max_trials": MAX_MAP_LENGTH + 1}, "max_trials must be in"),
    ],
)
def test_search_space_rules_the_schema_cannot_say_are_checked(
    bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        SearchSpace.from_params(bad)


def test_a_grid_cannot_take_a_range() -> None:
    space = SearchSpace.from_params({"search_space": {**SPACE, "lr": {"min": 0.001, "max": 0.1}}})
    with pytest.raises(SearchSpaceError, match="search=grid needs a list of values for lr"):
        plan_trials(space, "2024-01-01")


def test_every_searchable_hyperparameter_comes_from_the_trainers_options() -> None:
    options = json.loads((DAGS / "ml_pipeline" / "trainer_options.json").read_text())
    train = options["commands"]["train"]["options"]
    assert list(searchable_options()) == [n for n, o in train.items() if o.get("searchable")]
    assert train["optimizer"]["schema"]["enum"] == ["adam", "adamw", "sgd"]


def test_train_arguments_are_rendered_not_templated_and_name_the_trial() -> None:
    (trial, *_) = plan_trials(SearchSpace.from_params(PARAMS), "2024-01-01")
    args = train_arguments(
        trial,
        run_training_options(RUN_PARAMS),
        experiment="exp",
        data_path="s3://processed/2024-01-01",
        ds="2024-01-01",
        run_id="manual__x:y+z",
    )
    assert "{{" not in " ".join(args)
    value = {flag: args[i + 1] for i, flag in enumerate(args[:-1]) if flag.startswith("--")}
    assert value["--data-path"] == "s3://processed/2024-01-01/"
    assert value["--date"] == "2024-01-01"
    assert value["--checkpoint-uri"] == (
        "s3://processed/2024-01-01/checkpoints/manual__x_y_z/t00-adam-lr0.001-bs32/"
    )
    assert value["--trial-id"] == trial.trial_id
    assert (value["--optimizer"], value["--lr"], value["--batch-size"]) == ("adam", "0.001", "32")
    # the run's options, the trainer's defaults for the rest, the run's seed
    assert (value["--epochs"], value["--hidden-sizes"], value["--seed"]) == ("5", "128", "7")
    assert value["--patience"] == "3" and "--weight-decay" not in args and "--compile" not in args


def test_a_searched_dimension_overrides_its_training_option() -> None:
    (trial,) = plan_trials(
        SearchSpace.from_params(
            {
                "search_space": {
                    **SPACE,
                    "optimizer": ["sgd"],
                    "lr": [0.1],
                    "batch_size": [8],
                    "momentum": [0.5],
                }
            }
        ),
        "2024-01-01",
    )
    fixed = run_training_options({"training": {"momentum": 0.9}, "seed": 1})
    (mapped,) = mapped_trials(
        [trial], fixed, experiment="e", data_path="s3://p/d/", ds="d", run_id="r"
    )
    assert mapped["trial_id"] == trial.trial_id == "t00-sgd-lr0.1-bs8-m0.5"
    args = mapped["arguments"]
    assert args[args.index("--momentum") + 1] == "0.5" and args.count("--momentum") == 1


def test_unknown_training_options_are_refused() -> None:
    with pytest.raises(SearchSpaceError, match="training has no option epoch"):
        run_training_options({"training": {"epoch": 3}, "seed": 1})


# --------------------------------------------------------------------------- selection
def _result(trial_id: str, accuracy: float, f1: float = 0.5, loss: float = 1.0) -> dict[str, Any]:
    """A train XCom whose validation metrics equal its test metrics (unless overridden)."""
    return {
        "trial_id": trial_id,
        "accuracy": accuracy,
        "f1_score": f1,
        "loss": loss,
        "val_accuracy": accuracy,
        "val_f1_score": f1,
        "val_loss": loss,
        "run_id": f"run-{trial_id}",
        "model_uri": f"models:/m-{trial_id}",
        "params": {"lr": 0.1},
    }


def test_select_best_takes_the_highest_accuracy_then_f1_then_loss() -> None:
    values = [_result("a", 0.9), _result("b", 0.95, f1=0.1), _result("c", 0.95, f1=0.2)]
    best = select_best(values, ["a", "b", "c"], 1)
    assert isinstance(best, BestTrial)
    assert (best.trial_id, best.run_id, best.trials_succeeded) == ("c", "run-c", 3)


def test_select_best_tolerates_failed_trials_down_to_the_minimum() -> None:
    values = [_result("a", 0.9), None, {"stale": True}]  # failed tries leave junk behind
    best = select_best(values, ["a", "b", "c"], 1)
    assert best.trial_id == "a"
    assert best.failed_trial_ids == ["b", "c"]
    with pytest.raises(
        NotEnoughTrials, match=r"only 1 of 3 trials succeeded .* is 2; failed trials: b, c"
    ):
        select_best(values, ["a", "b", "c"], 2)


def test_select_best_ranks_trials_on_the_validation_split_not_the_test_split() -> None:
    """The test split is kept for the champion comparison: choosing on it would bias the
    candidate's test score upwards (the trial that got lucky on test would always win)."""
    lucky_on_test = {**_result("a", accuracy=0.99), "val_accuracy": 0.80}
    best_on_validation = {**_result("b", accuracy=0.90), "val_accuracy": 0.95}
    best = select_best([lucky_on_test, best_on_validation], ["a", "b"], 1)
    assert best.trial_id == "b"
    assert best.val_accuracy == 0.95


def test_select_best_ignores_results_of_trials_it_did_not_plan() -> None:
    with pytest.raises(NotEnoughTrials, match="only 0 of 1"):
        select_best([_result("other", 0.99)], ["a"], 1)


# ------------------------------------------------------------------------------ config
def test_packaged_defaults_match_the_contract() -> None:
    """docs/CONTRACTS.md §3 with the chart's default values (only enabled pools appear)."""
    cfg = read_platform_config(DAGS / "ml_pipeline" / "platform_defaults.json")
    assert cfg.namespaces == {"training": "ml-training", "serving": "ml-serving"}
    assert cfg.buckets == {
        "datasets": "datasets",
        "processed": "processed",
        "mlflow": "mlflow",
        "xcom": "xcom",
        "logs": "logs",
    }
    assert (cfg.model_name, cfg.experiment) == ("digits-classifier", "ml-training-pipeline")
    assert cfg.trainer_image == "ghcr.io/ml-platform/trainer:0.1.0"
    assert (cfg.gpu_taint.key, cfg.gpu_taint.value, cfg.gpu_taint.effect) == (
        "nvidia.com/gpu",
        "present",
        "NoSchedule",
    )
    assert {"a100", "cpu", "h100"} <= set(cfg.profiles)
    assert cfg.profile("a100").gpus == 1 and cfg.profile("cpu").gpus == 0
    assert cfg.default_training_profile == "a100"


def test_config_file_from_the_environment_and_endpoint_overrides(tmp_path, monkeypatch) -> None:
    data = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())
    data["endpoints"]["mlflowTrackingUri"] = "http://mlflow.example:5000"
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("ML_PLATFORM_CONFIG", str(path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    clear_pipeline_caches()
    cfg = read_platform_config()
    assert cfg.source == str(path)
    assert cfg.tracking_uri() == "http://mlflow.example:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5555")
    assert cfg.tracking_uri() == "http://127.0.0.1:5555"  # env wins at run time (CONTRACTS §3)
    monkeypatch.setenv("ML_PLATFORM_CONFIG", str(tmp_path / "absent.json"))
    clear_pipeline_caches()
    assert read_platform_config().source.endswith("platform_defaults.json")
    clear_pipeline_caches()


def test_a_config_without_a_required_key_names_it() -> None:
    data = json.loads((DAGS / "ml_pipeline" / "platform_defaults.json").read_text())
    del data["profiles"]["a100"]["memory"]
    with pytest.raises(PlatformConfigError, match=r"missing `profiles\.a100\.memory`"):
        parse_platform_config(data, "platform.json")
    del data["profiles"]["cpu"]
    data["profiles"].pop("a100")
    with pytest.raises(PlatformConfigError, match=r"profiles\.cpu"):
        parse_platform_config(data, "platform.json")


# ---------------------------------------------------------------------------- settings
def test_runtime_defaults_to_kubernetes_and_rejects_typos(monkeypatch) -> None:
    monkeypatch.delenv("ML_PIPELINE_RUNTIME", raising=False)
    assert read_settings().runtime == "kubernetes"
    monkeypatch.setenv("ML_PIPELINE_RUNTIME", "Local")
    assert read_settings().is_local
    monkeypatch.setenv("ML_PIPELINE_RUNTIME", "k8s")
    with pytest.raises(SettingsError, match="not one of"):
        read_settings()
    monkeypatch.setenv("ML_PIPELINE_RUNTIME", "local")
    monkeypatch.setenv("ML_PIPELINE_RETRIES", "two")
    with pytest.raises(SettingsError, match="ML_PIPELINE_RETRIES='two' is not an integer"):
        read_settings()


def test_the_runtime_is_read_in_one_place() -> None:
    """Only ml_pipeline/config.py reads ML_PIPELINE_* variables."""
    import re

    read = re.compile(r"""(environ\.get\(|environ\[|getenv\(|_int\()\s*["']ML_PIPELINE_""")
    readers = [
        str(p.relative_to(REPO))
        for p in [*(DAGS / "ml_pipeline").rglob("*.py"), *DAGS.glob("*.py")]
        if read.search(p.read_text())
    ]
    assert readers == ["dags/ml_pipeline/config.py"]


# ----------------------------------------------------------------------- notifications
class _Capture(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def capture_server():
    bodies: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("C", (_Capture,), {"bodies": bodies}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()


SUMMARY = RunSummary(
    dag_id="ml_full_training_pipeline",
    run_id="scheduled__2024-01-01",
    date="2024-01-01",
    decision="deploy",
    reason="better by 0.02",
    trials_planned=4,
    trials_succeeded=3,
    best_trial_id="t01",
    best_params={"lr": 0.01},
    candidate_accuracy=0.97,
    baseline_accuracy=0.95,
    improvement=0.02,
    champion_version="2",
    previous_version="1",
    mlflow_model_url="http://mlflow/#/models/digits-classifier/versions/2",
)


@pytest.mark.parametrize("where", ["password", "host"])
def test_summary_goes_to_the_webhook_from_the_connection(
    capture_server, monkeypatch, where
) -> None:
    from ml_pipeline.notify import send_summary

    url, bodies = capture_server
    monkeypatch.setenv(
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK", json.dumps({"conn_type": "http", where: url})
    )
    assert send_summary(SUMMARY) is True
    (body,) = bodies
    assert body["blocks"][0]["type"] == "section"
    text = body["text"]
    for fragment in (
        "2024-01-01",
        "*deploy*",
        "t01",
        "97.00%",
        "95.00%",
        "version: 2 (previous 1)",
    ):
        assert fragment in text


def test_without_a_webhook_the_message_is_logged(monkeypatch, caplog) -> None:
    from ml_pipeline.notify import send_summary

    monkeypatch.delenv("AIRFLOW_CONN_ML_PIPELINE_WEBHOOK", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_ML_PIPELINE_WEBHOOK_URL", raising=False)
    with caplog.at_level("INFO", logger="ml_pipeline.notify"):
        assert send_summary(SUMMARY) is False
    assert "no webhook configured" in caplog.text and "t01" in caplog.text


def test_the_webhook_url_may_come_from_a_variable(capture_server, monkeypatch) -> None:
    from ml_pipeline.notify import FailureWebhookNotifier

    url, bodies = capture_server
    monkeypatch.delenv("AIRFLOW_CONN_ML_PIPELINE_WEBHOOK", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_ML_PIPELINE_WEBHOOK_URL", url)
    dag_run = type("DR", (), {"dag_id": "ml_full_training_pipeline", "run_id": "r1"})()
    ti = type("TI", (), {"task_id": "data_preparation.validate_data", "map_index": -1})()
    FailureWebhookNotifier()(
        {"dag_run": dag_run, "ds": "2024-01-01", "ti": ti, "reason": "task_failure"}
    )
    (body,) = bodies
    assert ":red_circle:" in body["text"]
    assert "data_preparation.validate_data" in body["text"] and "2024-01-01" in body["text"]


def test_a_webhook_outage_is_retried_then_warned_about_never_raised(monkeypatch, caplog) -> None:
    """A deploy that happened must not become a failed run because the chat is down."""
    from ml_pipeline import notify

    monkeypatch.setattr(notify, "RETRY_DELAYS_S", (0.0, 0.0))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK",
        json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/hook"}),
    )
    with caplog.at_level("WARNING", logger="ml_pipeline.notify"):
        assert notify.send_summary(SUMMARY) is False
    assert "not delivered after 3 attempts" in caplog.text and "127.0.0.1:9/hook" in caplog.text
    assert notify.send("text") is False


def test_a_webhook_that_fails_once_gets_the_message_on_retry(capture_server, monkeypatch) -> None:
    from ml_pipeline import notify

    url, bodies = capture_server
    calls = {"n": 0}
    real_post = notify.post_webhook

    def flaky_post(target: str, payload: dict[str, Any]) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise notify.WebhookError("webhook POST failed: 503 Service Unavailable")
        return real_post(target, payload)

    monkeypatch.setattr(notify, "post_webhook", flaky_post)
    monkeypatch.setattr(notify, "RETRY_DELAYS_S", (0.0, 0.0))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK", json.dumps({"conn_type": "http", "host": url})
    )
    assert notify.send_summary(SUMMARY) is True
    assert calls["n"] == 2 and len(bodies) == 1


def _failure_context(deploy_state: str | None, deployed: dict[str, Any] | None) -> dict[str, Any]:
    """The context a DAG failure callback gets, with the run's deploy_model outcome."""
    from types import SimpleNamespace

    dag_run = SimpleNamespace(dag_id="ml_full_training_pipeline", run_id="manual__1")
    ti = SimpleNamespace(
        task_id="send_notification",
        map_index=-1,
        xcom_pull=lambda task_ids=None, **_: deployed if task_ids == "deploy_model" else None,
        get_task_states=lambda **_: {"manual__1": {"deploy_model": deploy_state}},
    )
    dag = SimpleNamespace(dag_id="ml_full_training_pipeline", task_ids=["deploy_model"])
    return {"dag": dag, "dag_run": dag_run, "ti": ti, "ds": "2024-01-01", "reason": "boom"}


def test_a_failure_after_a_deploy_says_what_was_deployed() -> None:
    from ml_pipeline.notify import failure_text

    deployed = {"model_name": "digits-classifier", "version": "7", "previous_version": "6"}
    text = failure_text(_failure_context("success", deployed))
    assert "nothing was deployed" not in text
    assert "deploy_model DID make digits-classifier version 7 the champion (previous 6)" in text


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("skipped", "nothing was deployed by this run; the champion is unchanged"),
        (None, "nothing was deployed by this run; the champion is unchanged"),
        ("failed", "deploy_model failed"),
    ],
)
def test_a_failure_without_a_deploy_says_so(state: str | None, expected: str) -> None:
    from ml_pipeline.notify import failure_text

    assert expected in failure_text(_failure_context(state, None))


def test_deadline_callback_is_awaitable_and_reports_the_run(capture_server, monkeypatch) -> None:
    import asyncio

    from ml_pipeline.notify import deadline_missed

    url, bodies = capture_server
    monkeypatch.setenv(
        "AIRFLOW_CONN_ML_PIPELINE_WEBHOOK", json.dumps({"conn_type": "http", "host": url})
    )
    context = {"dag_run": {"dag_run_id": "scheduled__2024-01-01", "state": "running"}}
    asyncio.run(deadline_missed("ml_full_training_pipeline", 360, context=context))
    assert "scheduled__2024-01-01" in bodies[0]["text"] and "360 min" in bodies[0]["text"]


def test_the_summary_builds_links_without_mlflow(monkeypatch) -> None:
    from ml_pipeline.notify import build_summary

    best = BestTrial("t00", "run1", "models:/m-1", 0.9, 0.9, 0.3, {"lr": 0.1}, 2, 2, [])
    summary = build_summary(
        dag_id="d",
        run_id="r",
        ds="2024-01-01",
        best=best,
        evaluation={
            "reason": "ok",
            "new_accuracy": 0.9,
            "baseline_accuracy": 0.0,
            "champion_version": None,
        },
        deployed={"version": "1", "previous_version": None},
        model_name="digits classifier",
        tracking_uri="http://127.0.0.1:9",  # unreachable: the run link is left out
        ui_url="http://mlflow.example",
    )
    assert summary.decision == "deploy" and summary.champion_version == "1"
    assert summary.mlflow_run_url is None
    assert (
        summary.mlflow_model_url == "http://mlflow.example/#/models/digits%20classifier/versions/1"
    )


def test_dataclasses_round_trip_through_airflow_serde() -> None:
    from airflow.sdk.serde import deserialize, serialize
    from ml_pipeline.selection import allow_in_xcom

    allow_in_xcom()
    best = BestTrial("t00", "run1", "models:/m-1", 0.9, 0.8, 0.3, {"lr": 0.1}, 2, 1, ["t01"])
    assert deserialize(json.loads(json.dumps(serialize(best)))) == best
