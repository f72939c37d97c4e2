"""The model: a multi-layer perceptron over the 64 pixels, plus its serving wrapper."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ml_trainer import contract


def build_mlp(
    hidden_sizes: Sequence[int],
    in_features: int = len(contract.FEATURE_COLUMNS),
    num_classes: int = contract.NUM_CLASSES,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear -> ReLU (-> Dropout) for each hidden size, then a linear layer to the logits.

    With the default hidden sizes (256, 256) this is 64 -> 256 -> 256 -> 10.
    """
    layers: list[nn.Module] = []
    width = in_features
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """(x - mean) / std with the statistics fitted on the train split."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def for_serving(mlp: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Sequential:
    """The model as it is logged and served: raw pixels in, logits out (fp32, CPU, eval mode).

    Training runs on pre-standardised tensors (standardising once is cheaper than per
    batch); the served model carries the statistics itself so callers send raw pixels.
    """
    trained = copy.deepcopy(mlp).float().cpu()
    return nn.Sequential(Standardize(mean, std), trained).eval()
