"""The command line: every subcommand has --help, bad arguments are refused by argparse."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from trainer_support import CliRun

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["generate-data", "validate", "preprocess", "train", "evaluate", "deploy", "rollback"]
TRAIN = [
    "train",
    "--batch-size",
    "64",
    "--data-path",
    "s3://processed/2026-01-01/",
    "--experiment-name",
    "e",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_naming_its_xcom_keys(
    command: str, trainer: Callable[..., CliRun]
) -> None:
    from ml_trainer.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    assert "XCom (XCOM_RETURN_PATH)" in help_text
    assert trainer(command, "--help").code == 0


@pytest.mark.parametrize("lr", ["0", "-0.001", "nan"])
def test_train_refuses_a_learning_rate_that_is_not_positive(
    lr: str, trainer: Callable[..., CliRun]
) -> None:
    run = trainer(*TRAIN, "--optimizer", "adam", "--lr", lr)
    assert run.code == 2
    assert "--lr" in run.stderr
    assert run.xcom is None


def test_train_refuses_an_unknown_optimizer(trainer: Callable[..., CliRun]) -> None:
    run = trainer(*TRAIN, "--optimizer", "rmsprop", "--lr", "0.001")
    assert run.code == 2
    assert "invalid choice: 'rmsprop'" in run.stderr
    assert "adam" in run.stderr and "adamw" in run.stderr and "sgd" in run.stderr


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--hidden-sizes", "256,-1"], "--hidden-sizes"),
        (["--batch-size", "0"], "--batch-size"),
        (["--data-path", "processed/2026-01-01/"], "s3://bucket/key"),
        (["--checkpoint-uri", "/tmp/ckpt"], "s3://bucket/key"),
    ],
)
def test_train_refuses_malformed_arguments(
    argv: list[str], complaint: str, trainer: Callable[..., CliRun]
) -> None:
    run = trainer(*TRAIN, "--optimizer", "adam", "--lr", "0.001", *argv)
    assert run.code == 2
    assert complaint in run.stderr


def test_generate_data_refuses_a_malformed_date_and_out_of_range_drift(
    trainer: Callable[..., CliRun],
) -> None:
    assert (
        "YYYY-MM-DD"
        in trainer("generate-data", "--date", "15/01/2026", "--output", "s3://d/k").stderr
    )
    assert (
        "[0, 1]"
        in trainer(
            "generate-data", "--date", "2026-01-15", "--output", "s3://d/k", "--drift", "1.5"
        ).stderr
    )


def test_seed_call_shape_train_py_is_the_train_command() -> None:
    """`python train.py --lr … --optimizer …` parses exactly like `trainer train`."""
    shim = REPO / "images" / "trainer" / "train.py"
    result = subprocess.run(
        [
            sys.executable,
            str(shim),
            "--lr",
            "0",
            "--batch-size",
            "64",
            "--optimizer",
            "adam",
            "--data-path",
            "s3://processed/x/",
            "--experiment-name",
            "e",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "trainer train: error: argument --lr: must be > 0" in result.stderr


def test_python_dash_m_ml_trainer_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ml_trainer", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
