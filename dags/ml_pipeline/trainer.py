"""The trainer's side of the pod-task contract (docs/CONTRACTS.md §4), shared by both runtimes.

A pod task is `trainer <command> <arguments>` with `trainer_env()`; it writes one JSON object to
`$XCOM_RETURN_PATH`, which becomes the task's XCom. Credentials are not here: in Kubernetes
they come from the object-store Secret (`ml_pipeline.pod_tasks`), locally from the environment
the stack provides.

The commands, their flags, defaults, JSON schemas and which hyperparameters can be searched
are the trainer's own (its option dataclasses, `ml_trainer.commands`), written to
`trainer_options.json` next to this module by `make generate-trainer-options`: the DAGs
cannot import `ml_trainer`, which is not in the Airflow image. Read once per process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ml_pipeline.config import PlatformConfig, Profile

OPTIONS_PATH = Path(__file__).with_name("trainer_options.json")
TRAINER_CLI = "trainer"
XCOM_RETURN_PATH_IN_POD = "/airflow/xcom/return.json"


@dataclass(frozen=True)
class TrainerOption:
    """One flag of a trainer command, as `trainer_options.json` describes it."""

    name: str
    flag: str
    help: str
    schema: dict[str, Any]
    required: bool = False
    default: Any = None
    searchable: bool = False
    short: str = ""

    @property
    def is_switch(self) -> bool:
        """A flag without a value (`--compile`)."""
        return self.schema.get("type") == "boolean"

    @property
    def is_numeric(self) -> bool:
        return self.schema.get("type") in ("number", "integer")

    def value(self, raw: Any) -> Any:
        """A JSON value as this option's type (a JSON `64.0` is the integer 64)."""
        if raw is None:
            return None
        if self.schema.get("type") == "integer":
            return int(raw)
        if self.schema.get("type") == "number":
            return float(raw)
        return raw

    def text(self, raw: Any) -> str:
        """The value as the command line spells it (`0.003`, `64`, `adam`)."""
        return str(self.value(raw))

    def arguments(self, raw: Any) -> list[str]:
        """`[flag, text]` for a value; `[flag]` / `[]` for a switch; `[]` for None (the default)."""
        if raw is None or (self.is_switch and not raw):
            return []
        return [self.flag] if self.is_switch else [self.flag, self.text(raw)]


@dataclass(frozen=True)
class TrainerCommands:
    """Every trainer command and its options (in the trainer's declaration order)."""

    options: dict[str, dict[str, TrainerOption]]
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.options)

    def option(self, command: str, name: str) -> TrainerOption:
        try:
            return self.options[command][name]
        except KeyError:
            raise KeyError(
                f"trainer {command} has no option {name!r} in {self.source}; "
                "run `make generate-trainer-options` after changing the trainer's options"
            ) from None


def parse_trainer_commands(data: dict[str, Any], source: str) -> TrainerCommands:
    return TrainerCommands(
        options={
            command: {
                name: TrainerOption(
                    name=name,
                    flag=raw["flag"],
                    help=raw["help"],
                    schema=dict(raw["schema"]),
                    required=bool(raw.get("required", False)),
                    default=raw.get("default"),
                    searchable=bool(raw.get("searchable", False)),
                    short=str(raw.get("short", "")),
                )
                for name, raw in spec["options"].items()
            }
            for command, spec in data["commands"].items()
        },
        source=source,
    )


@cache
def trainer_commands() -> TrainerCommands:
    """The trainer's commands of this process (read once)."""
    return parse_trainer_commands(json.loads(OPTIONS_PATH.read_text()), str(OPTIONS_PATH))


def cuda_visible_devices(profile: Profile) -> str:
    """`0,1,…` for the GPUs the device plugin gave the pod; empty hides GPUs from CPU tasks."""
    return ",".join(str(i) for i in range(profile.gpus))


def trainer_env(cfg: PlatformConfig, profile: Profile, ds: str) -> dict[str, str]:
    """Plain (non-secret) environment of every trainer process, in both runtimes."""
    return {
        "MLFLOW_TRACKING_URI": cfg.tracking_uri(),
        "MLFLOW_EXPERIMENT_NAME": cfg.experiment,
        "AWS_ENDPOINT_URL": cfg.s3_endpoint(),
        "AWS_DEFAULT_REGION": cfg.s3_region,
        "CUDA_VISIBLE_DEVICES": cuda_visible_devices(profile),
        "DATA_DATE": ds,
        "ML_PLATFORM_PROFILE": profile.name,
        "PYTHONUNBUFFERED": "1",
    }
