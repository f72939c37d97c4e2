"""The training loop: plain PyTorch over in-memory (on GPU: device-resident) tensors.

Batches are index slices of tensors that already sit on the device: a per-sample
`DataLoader(TensorDataset)` collates every batch row by row in Python (measured in
bench/trainer_throughput.py) and buys nothing when the data fits in memory. Nothing here knows about MLflow or object storage: `fit` calls
`on_epoch_end` and the caller logs and checkpoints there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ml_trainer.config import OPTIMIZERS
from ml_trainer.errors import TrainerError

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 8192


@dataclass(frozen=True)
class Device:
    """Where training runs and in which precision."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None  # bf16 on CUDA, None = full fp32
    name: str = "cpu"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def cpu_budget() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a pod's limit)."""
    budget = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            budget = min(budget, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return budget


def select_device(requested: str = "auto", precision: str = "auto") -> Device:
    """CUDA when present (bf16 autocast, TF32 matmuls), else CPU in fp32.

    On CPU, torch's thread pool is sized to the pod's CPU limit (unless OMP_NUM_THREADS says
    otherwise): torch sizes it to the node's cores, and 16 threads throttled to 1 CPU crawl.
    """
    use_cuda = requested == "cuda" or (requested == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise TrainerError(
            "--device cuda was requested but no CUDA device is visible.",
            "schedule the pod on a GPU pool (profile a100/h100) or pass --device auto.",
        )
    if not use_cuda:
        if "OMP_NUM_THREADS" not in os.environ and cpu_budget() < torch.get_num_threads():
            log.info(
                "using %d CPU threads (the CPU limit), not %d",
                cpu_budget(),
                torch.get_num_threads(),
            )
            torch.set_num_threads(cpu_budget())
        return Device(torch.device("cpu"), torch.bfloat16 if precision == "bf16" else None, "cpu")
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    dtype = None if precision == "fp32" else torch.bfloat16
    return Device(torch.device("cuda"), dtype, f"cuda:{torch.cuda.get_device_name()}")


def make_optimizer(
    name: str,
    params: Iterable[nn.Parameter],
    lr: float,
    weight_decay: float | None = None,
    momentum: float = 0.9,
    fused: bool = False,
) -> torch.optim.Optimizer:
    """adam / adamw / sgd (with momentum); weight decay defaults to each optimizer's own."""
    extra: dict[str, Any] = {} if weight_decay is None else {"weight_decay": weight_decay}
    if fused:
        extra["fused"] = True  # one kernel per step instead of one per parameter (CUDA)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, **extra)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, **extra)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, **extra)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    device: Device,
) -> float:
    """One pass over the shuffled rows; returns the mean training loss."""
    model.train()
    n = len(labels)
    order = torch.randperm(n, generator=generator, device=features.device)
    losses, sizes = [], []
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        with device.autocast():
            loss = F.cross_entropy(model(features[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())  # no host sync per step
        sizes.append(len(index))
    weights = torch.tensor(sizes, dtype=torch.float32, device=features.device)
    return float((torch.stack(losses).float() * weights).sum() / n)


@dataclass(frozen=True)
class Scores:
    loss: float
    accuracy: float
    f1: float  # macro F1 over the classes


def macro_f1(truth: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> float:
    """Macro F1 over the classes that occur in `truth` or `predicted` (as scikit-learn's)."""
    confusion = torch.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)
    confusion = confusion.reshape(num_classes, num_classes).double()
    true_positives = confusion.diag()
    denominator = confusion.sum(0) + confusion.sum(1)  # 2 TP + FP + FN
    present = denominator > 0
    return float((2 * true_positives[present] / denominator[present]).mean())


@torch.no_grad()
def evaluate(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, device: Device
) -> Scores:
    model.eval()
    logits = []
    for start in range(0, len(labels), EVAL_BATCH_SIZE):
        with device.autocast():
            logits.append(model(features[start : start + EVAL_BATCH_SIZE]).float())
    all_logits = torch.cat(logits)
    predicted = all_logits.argmax(dim=1)
    return Scores(
        loss=F.cross_entropy(all_logits, labels).item(),
        accuracy=(predicted == labels).double().mean().item(),
        f1=macro_f1(labels, predicted, all_logits.shape[1]),
    )


@dataclass
class EarlyStopping:
    """Stop after `patience` epochs without a lower validation loss; remember the best weights."""

    patience: int
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        """Record an epoch; True when it is the best so far."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def restore_best(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "patience": self.patience,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": {k: v.cpu() for k, v in (self.best_state or {}).items()} or None,
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.patience = state["patience"]
        self.best_loss = state["best_loss"]
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        best = state["best_state"]
        self.best_state = {k: v.to(device) for k, v in best.items()} if best else None


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_f1: float
    seconds: float
    samples_per_second: float

    def metrics(self) -> dict[str, float]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "val_f1": self.val_f1,
            "epoch_seconds": self.seconds,
            "train_samples_per_second": self.samples_per_second,
        }


@dataclass(frozen=True)
class Splits:
    """Standardised features and labels, already on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Splits,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    device: Device,
    early_stopping: EarlyStopping,
    start_epoch: int = 0,
    on_epoch_end: Callable[[EpochResult], None] = lambda result: None,
    train_model: nn.Module | None = None,
) -> list[EpochResult]:
    """Epochs `start_epoch + 1 .. epochs`, or fewer if early stopping says so.

    `train_model` is what the steps run through (e.g. a `torch.compile`d wrapper of
    `model`); validation and state always use `model` itself.
    """
    runner = train_model or model
    results = []
    for epoch in range(start_epoch + 1, epochs + 1):
        if early_stopping.should_stop:
            break
        started = time.perf_counter()
        train_loss = train_one_epoch(
            runner, optimizer, data.x_train, data.y_train, batch_size, generator, device
        )
        seconds = time.perf_counter() - started  # train_one_epoch synchronises via .item()
        val = evaluate(model, data.x_val, data.y_val, device)
        early_stopping.update(epoch, val.loss, model)
        result = EpochResult(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val.loss,
            val_accuracy=val.accuracy,
            val_f1=val.f1,
            seconds=seconds,
            samples_per_second=len(data.y_train) / seconds,
        )
        log.info(
            "epoch %3d  train_loss %.4f  val_loss %.4f  val_acc %.4f  %.0f samples/s%s",
            epoch,
            train_loss,
            val.loss,
            val.accuracy,
            result.samples_per_second,
            "  *" if early_stopping.best_epoch == epoch else "",
        )
        results.append(result)
        on_epoch_end(result)
    if early_stopping.should_stop:
        log.info(
            "early stopping: no better validation loss for %d epochs (best epoch %d)",
            early_stopping.patience,
            early_stopping.best_epoch,
        )
    return results
