"""Training checkpoints in object storage, so a retried pod resumes instead of restarting.

One object, `<checkpoint-uri>/last.pt`, is overwritten after every epoch (an S3 PUT replaces
an object atomically, so a reader never sees half a checkpoint). It holds everything that
makes the resumed run identical to an uninterrupted one: model and optimizer state, the
epoch, early-stopping state, every random-number generator the loop draws from, and the
MLflow run id so the same MLflow run continues. `fingerprint` records the hyperparameters
and the data hash; a checkpoint is only resumed by the run that wrote it.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ml_trainer.errors import TrainerError
from ml_trainer.storage import ObjectStore, S3Uri

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    epoch: int  # epochs completed
    fingerprint: dict[str, Any]
    mlflow_run_id: str
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    early_stopping: dict[str, Any]
    rng: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    completed: bool = False
    result: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION


def capture_rng(loop_generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "loop": loop_generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], loop_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    loop_generator.set_state(state["loop"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointStore:
    """`last.pt` under one prefix."""

    def __init__(self, prefix: str, store: ObjectStore) -> None:
        self.uri = S3Uri.parse(prefix).join(CHECKPOINT_NAME)
        self.store = store

    def save(self, checkpoint: Checkpoint) -> None:
        buffer = io.BytesIO()
        torch.save(asdict(checkpoint), buffer)
        self.store.write_bytes(self.uri, buffer.getvalue())

    def load(self) -> Checkpoint | None:
        if not self.store.exists(self.uri):
            return None
        data = self.store.read_bytes(self.uri)
        try:
            # weights_only: a checkpoint is tensors and plain containers, never code
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            checkpoint = Checkpoint(**payload)
        except Exception as exc:
            raise TrainerError(
                f"The checkpoint {self.uri} cannot be read ({type(exc).__name__}: {exc}).",
                "delete it to start this trial from scratch, or pass another --checkpoint-uri.",
            ) from exc
        if checkpoint.format_version != FORMAT_VERSION:
            raise TrainerError(
                f"The checkpoint {self.uri} has format {checkpoint.format_version}, "
                f"this trainer writes format {FORMAT_VERSION}.",
                "delete it (or pass another --checkpoint-uri) to start the trial from scratch.",
            )
        return checkpoint

    def check_matches(self, checkpoint: Checkpoint, fingerprint: dict[str, Any]) -> None:
        """Refuse to resume a checkpoint that another configuration or other data wrote."""
        differences = [
            f"{key}: checkpoint {checkpoint.fingerprint.get(key)!r} vs now {value!r}"
            for key, value in fingerprint.items()
            if checkpoint.fingerprint.get(key) != value
        ]
        if differences:
            raise TrainerError(
                f"The checkpoint {self.uri} was written by a different training configuration "
                f"({'; '.join(differences)}).",
                "give each trial its own --checkpoint-uri, or delete the old checkpoint to start over.",
            )
