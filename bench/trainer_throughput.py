"""Training throughput of the trainer's loop vs a bare PyTorch loop, in one run.

Same model (MLP 64->256->256->10), same data (digits, up-sampled), same batch size (64), same
optimizer and precision; the only difference is the loop. The trainer's side is
`ml_trainer.loop.fit` as `trainer train` runs it: shuffled index batches over in-memory
(on GPU: device-resident) tensors, plus per-epoch validation and early-stopping bookkeeping.
The bare side is the textbook loop. Each round runs both (which goes first alternates) and the
ratio is the median of the per-round ratios, so a noisy neighbour slows both sides of a round
alike; the ratio of each loop's fastest round is reported beside it.

Also measured, for reference: a `DataLoader(TensorDataset)` loop (the per-sample loading the
trainer avoids) and, on CUDA, the trainer with `torch.compile`.

On CPU both loops run on one thread (BENCH_TRAINER_THREADS): the `cpu` pod profile has one
CPU, and on a shared 2-core machine two threads of each loop fight the neighbours' processes
and the numbers swing 10x between rounds.

Knobs (environment): BENCH_TRAINER_ROWS (20000), BENCH_TRAINER_ROUNDS (9),
BENCH_TRAINER_EPOCHS (3 per round), BENCH_TRAINER_THREADS (CPU only, 1),
BENCH_TRAINER_COMPILE (1 = also measure torch.compile; default on CUDA only).
"""

from __future__ import annotations

import copy
import os
import resource
import statistics
import time
from collections.abc import Callable

from bench.harness import Measurement

NAME = "trainer_throughput"
BATCH_SIZE = 64
HIDDEN = (256, 256)
GOAL_RATIO = 0.95


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _splits(rows: int, device):  # torch types are imported lazily
    from ml_trainer import data, preprocess
    from ml_trainer.train import to_splits

    frame = data.generate("2026-01-15", rows=rows)
    train, test = preprocess.split(frame, 0.2, seed=0)
    train, val = preprocess.split(train, 0.1, seed=0)
    mean, std = preprocess.fit_standardisation(train)
    return to_splits(train, val, test, mean, std, device)


def _sync(device) -> None:
    import torch

    if device.is_cuda:
        torch.cuda.synchronize()


def _timed_fit(model, optimizer, splits, epochs: int, generator, device, train_model=None) -> float:
    """Seconds of `ml_trainer.loop.fit` for `epochs` epochs, as `trainer train` runs it."""
    from ml_trainer.loop import EarlyStopping, fit

    _sync(device)
    started = time.perf_counter()
    fit(
        model,
        optimizer,
        splits,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        generator=generator,
        device=device,
        early_stopping=EarlyStopping(0),
        train_model=train_model,
    )
    _sync(device)
    return time.perf_counter() - started


def main_loops(device, splits, epochs: int):
    """The three loops, each `fn() -> seconds` for `epochs` epochs from the same initial weights."""
    import torch
    import torch.nn.functional as F
    from ml_trainer.loop import make_optimizer
    from ml_trainer.model import build_mlp

    torch.manual_seed(0)
    initial = build_mlp(HIDDEN).to(device.device)

    def fresh():
        model = copy.deepcopy(initial)
        optimizer = make_optimizer("adam", model.parameters(), 1e-3, fused=device.is_cuda)
        return model, optimizer, torch.Generator(device=device.device).manual_seed(0)

    def trainer() -> float:
        model, optimizer, generator = fresh()
        return _timed_fit(model, optimizer, splits, epochs, generator, device)

    def bare() -> float:
        model, optimizer, generator = fresh()
        x, y = splits.x_train, splits.y_train
        _sync(device)
        started = time.perf_counter()
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(y), generator=generator, device=x.device)
            for start in range(0, len(y), BATCH_SIZE):
                index = order[start : start + BATCH_SIZE]
                with device.autocast():
                    loss = F.cross_entropy(model(x[index]), y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        _sync(device)
        return time.perf_counter() - started

    def dataloader() -> float:
        from torch.utils.data import DataLoader, TensorDataset

        model, optimizer, _ = fresh()
        loader = DataLoader(
            TensorDataset(splits.x_train.cpu(), splits.y_train.cpu()),
            batch_size=BATCH_SIZE,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            pin_memory=device.is_cuda,
        )
        _sync(device)
        started = time.perf_counter()
        for _ in range(epochs):
            model.train()
            for xb, yb in loader:
                xb = xb.to(device.device, non_blocking=True)
                yb = yb.to(device.device, non_blocking=True)
                with device.autocast():
                    loss = F.cross_entropy(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        _sync(device)
        return time.perf_counter() - started

    return trainer, bare, dataloader


def compiled_loop(device, splits, epochs: int) -> Callable[[], float]:
    """The trainer's loop through one `torch.compile`d model (`trainer train --compile`)."""
    import torch
    from ml_trainer.loop import make_optimizer
    from ml_trainer.model import build_mlp

    torch.manual_seed(0)
    model = build_mlp(HIDDEN).to(device.device)
    optimizer = make_optimizer("adam", model.parameters(), 1e-3, fused=device.is_cuda)
    runner = torch.compile(model)
    generator = torch.Generator(device=device.device).manual_seed(0)

    def timed() -> float:
        return _timed_fit(model, optimizer, splits, epochs, generator, device, train_model=runner)

    return timed


def _peak_memory(device) -> tuple[float, str]:
    import torch

    if device.is_cuda:
        return torch.cuda.max_memory_allocated() / 2**20, "CUDA max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def run() -> list[Measurement]:
    import torch
    from ml_trainer.loop import select_device

    rows = _env_int("BENCH_TRAINER_ROWS", 20_000)
    rounds = _env_int("BENCH_TRAINER_ROUNDS", 9)
    epochs = _env_int("BENCH_TRAINER_EPOCHS", 3)
    device = select_device("auto")
    if not device.is_cuda:
        torch.set_num_threads(_env_int("BENCH_TRAINER_THREADS", 1))
    measure_compile = os.environ.get("BENCH_TRAINER_COMPILE", "1" if device.is_cuda else "0") == "1"

    splits = _splits(rows, device)
    samples = epochs * len(splits.y_train)
    trainer, bare, dataloader = main_loops(device, splits, epochs)
    trainer(), bare(), dataloader()  # warm-up: allocator, thread pools, kernels

    # (trainer, bare) samples/s per round, which of the two goes first alternating; the
    # DataLoader loop's rounds come after (run between them, it slowed whichever loop followed
    # it: its per-sample tensors churn the allocator and the caches).
    per_round: list[tuple[float, float]] = []
    for round_ in range(rounds):
        order = (trainer, bare) if round_ % 2 == 0 else (bare, trainer)
        seconds = {fn: fn() for fn in order}
        per_round.append((samples / seconds[trainer], samples / seconds[bare]))
    dataloader_rates = [samples / dataloader() for _ in range(rounds)]
    trainer_rate, bare_rate = (statistics.median(r[i] for r in per_round) for i in range(2))
    dataloader_rate = statistics.median(dataloader_rates)
    ratio = statistics.median(r[0] / r[1] for r in per_round)
    best_ratio = max(r[0] for r in per_round) / max(r[1] for r in per_round)
    dataloader_slowdown = bare_rate / dataloader_rate

    precision = str(device.autocast_dtype or torch.float32).removeprefix("torch.")
    setup = {
        "device": device.name,
        "precision": precision,
        "model": "MLP 64->256->256->10",
        "batch_size": BATCH_SIZE,
        "train_rows": len(splits.y_train),
        "epochs_per_round": epochs,
        "rounds": rounds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "per_round": [{"trainer": round(t), "bare": round(b)} for t, b in per_round],
        "dataloader_rounds": [round(d) for d in dataloader_rates],
    }
    where = f"{device.name}, {precision}"
    measurements = [
        Measurement(
            NAME,
            f"ratio trainer/bare ({where})",
            ratio,
            "x",
            f">= {GOAL_RATIO}",
            f"median of per-round ratios (best rounds: {best_ratio:.3f}); "
            "trainer = ml_trainer.loop.fit incl. per-epoch validation",
            setup,
        ),
        Measurement(NAME, f"trainer loop ({where})", trainer_rate, "samples/s"),
        Measurement(NAME, f"bare loop ({where})", bare_rate, "samples/s"),
        Measurement(
            NAME,
            f"DataLoader(TensorDataset) loop ({where})",
            dataloader_rate,
            "samples/s",
            notes=f"bare / DataLoader = {dataloader_slowdown:.2f}x (medians)",
        ),
    ]
    if measure_compile:
        compiled = compiled_loop(device, splits, epochs)
        compile_seconds = compiled()  # the first call compiles
        compiled_rate = statistics.median(samples / compiled() for _ in range(3))
        measurements += [
            Measurement(
                NAME,
                f"trainer loop, torch.compile ({where})",
                compiled_rate,
                "samples/s",
                notes=f"vs eager trainer {compiled_rate / trainer_rate:.2f}x",
            ),
            Measurement(
                NAME, "torch.compile first call", compile_seconds, "s", notes="compile + 1 round"
            ),
        ]
    peak, what = _peak_memory(device)
    measurements.append(Measurement(NAME, f"peak memory ({what})", peak, "MiB"))
    return measurements
