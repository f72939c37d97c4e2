"""The model and the loop, in memory: determinism, early stopping, resume, drift, serving."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from ml_trainer import data, preprocess
from ml_trainer.checkpoint import Checkpoint, CheckpointStore, capture_rng, restore_rng
from ml_trainer.loop import Device, EarlyStopping, Splits, evaluate, fit, make_optimizer
from ml_trainer.model import build_mlp, for_serving
from ml_trainer.train import to_splits
from trainer_support import MemoryStore

CPU = Device(torch.device("cpu"))


def _splits(drift: float = 0.0) -> tuple[Splits, list[float], list[float]]:
    frame = data.generate("2026-01-15", drift=drift)
    train, test = preprocess.split(frame, 0.2, seed=0)
    train, val = preprocess.split(train, 0.1, seed=0)
    mean, std = preprocess.fit_standardisation(train)
    return to_splits(train, val, test, mean, std, CPU), mean, std


@pytest.fixture(scope="module")
def clean() -> tuple[Splits, list[float], list[float]]:
    return _splits()


def _train(splits: Splits, epochs: int, seed: int = 0, hidden=(64,), patience: int = 0, **kw):
    torch.manual_seed(seed)
    model = build_mlp(hidden)
    optimizer = make_optimizer("adam", model.parameters(), lr=1e-2)
    stopper = EarlyStopping(patience)
    generator = torch.Generator().manual_seed(seed)
    history = fit(
        model,
        optimizer,
        splits,
        epochs=epochs,
        batch_size=64,
        generator=generator,
        device=CPU,
        early_stopping=stopper,
        **kw,
    )
    return model, optimizer, stopper, generator, history


def test_the_default_model_is_64_256_256_10() -> None:
    shapes = [tuple(p.shape) for p in build_mlp((256, 256)).parameters()]
    assert shapes == [(256, 64), (256,), (256, 256), (256,), (10, 256), (10,)]


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_each_optimizer_learns(name: str, clean) -> None:
    splits = clean[0]
    torch.manual_seed(0)
    model = build_mlp((64,))
    optimizer = make_optimizer(name, model.parameters(), lr=0.05 if name == "sgd" else 1e-2)
    fit(
        model,
        optimizer,
        splits,
        epochs=3,
        batch_size=64,
        generator=torch.Generator().manual_seed(0),
        device=CPU,
        early_stopping=EarlyStopping(0),
    )
    assert evaluate(model, splits.x_test, splits.y_test, CPU).accuracy > 0.85


def test_same_seed_same_metrics_on_cpu(clean) -> None:
    *_, first = _train(clean[0], epochs=3, seed=5)
    *_, second = _train(clean[0], epochs=3, seed=5)
    *_, other = _train(clean[0], epochs=3, seed=6)
    strip = [dataclasses.replace(r, seconds=0, samples_per_second=0) for r in first]
    assert strip == [dataclasses.replace(r, seconds=0, samples_per_second=0) for r in second]
    assert [r.val_loss for r in first] != [r.val_loss for r in other]


def test_early_stopping_stops_after_patience_and_restores_the_best_weights(clean) -> None:
    splits = clean[0]
    model, _, stopper, _, history = _train(splits, epochs=100, patience=2)
    assert len(history) < 100
    assert stopper.bad_epochs == 2 and history[-1].epoch == stopper.best_epoch + 2
    stopper.restore_best(model)
    assert evaluate(model, splits.x_val, splits.y_val, CPU).loss == pytest.approx(
        stopper.best_loss, rel=1e-6
    )


def test_a_resumed_run_equals_an_uninterrupted_one(clean, memory_store: MemoryStore) -> None:
    """Checkpoint after epoch 2 (through the real serialisation), resume, finish: same numbers."""
    splits = clean[0]
    *_, uninterrupted = _train(splits, epochs=4, seed=3, patience=3)

    model, optimizer, stopper, generator, _ = _train(splits, epochs=2, seed=3, patience=3)
    checkpoints = CheckpointStore("s3://processed/day/checkpoints/t0/", memory_store)
    checkpoints.save(
        Checkpoint(
            epoch=2,
            fingerprint={"lr": 1e-3},
            mlflow_run_id="run-1",
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            early_stopping=stopper.state_dict(),
            rng=capture_rng(generator),
        )
    )
    torch.manual_seed(999)  # whatever the new process's RNG holds, the checkpoint wins
    saved = checkpoints.load()
    assert saved is not None and saved.mlflow_run_id == "run-1" and saved.epoch == 2
    resumed_model = build_mlp((64,))
    resumed_optimizer = make_optimizer("adam", resumed_model.parameters(), lr=1e-2)
    resumed_model.load_state_dict(saved.model_state)
    resumed_optimizer.load_state_dict(saved.optimizer_state)
    resumed_stopper = EarlyStopping(0)
    resumed_stopper.load_state_dict(saved.early_stopping, torch.device("cpu"))
    resumed_generator = torch.Generator()
    restore_rng(saved.rng, resumed_generator)
    rest = fit(
        resumed_model,
        resumed_optimizer,
        splits,
        epochs=4,
        batch_size=64,
        generator=resumed_generator,
        device=CPU,
        early_stopping=resumed_stopper,
        start_epoch=2,
    )
    assert [r.epoch for r in rest] == [3, 4]
    assert [r.val_loss for r in rest] == [r.val_loss for r in uninterrupted[2:]]


def test_a_checkpoint_from_another_configuration_is_refused(memory_store: MemoryStore) -> None:
    from ml_trainer.errors import TrainerError

    checkpoints = CheckpointStore("s3://processed/day/checkpoints/t0/", memory_store)
    saved = Checkpoint(
        epoch=1,
        fingerprint={"lr": 0.1, "data_hash": "a"},
        mlflow_run_id="r",
        model_state={},
        optimizer_state={},
        early_stopping={},
        rng={},
    )
    with pytest.raises(TrainerError, match=r"lr: checkpoint 0\.1 vs now 0\.01"):
        checkpoints.check_matches(saved, {"lr": 0.01, "data_hash": "a"})


def test_drifted_days_yield_worse_models(clean) -> None:
    clean_model, *_ = _train(clean[0], epochs=5)
    drifted = _splits(drift=0.8)[0]
    drifted_model, *_ = _train(drifted, epochs=5)
    clean_accuracy = evaluate(clean_model, clean[0].x_test, clean[0].y_test, CPU).accuracy
    drifted_accuracy = evaluate(drifted_model, drifted.x_test, drifted.y_test, CPU).accuracy
    assert clean_accuracy > 0.9
    assert drifted_accuracy < clean_accuracy - 0.2


def test_the_serving_model_takes_raw_pixels(clean) -> None:
    splits, mean, std = clean
    model, *_ = _train(splits, epochs=1)
    raw = splits.x_test * torch.tensor(std, dtype=torch.float32) + torch.tensor(
        mean, dtype=torch.float32
    )
    served = for_serving(model, mean, std)
    with torch.no_grad():
        torch.testing.assert_close(served(raw), model.eval()(splits.x_test), rtol=1e-4, atol=1e-4)
    assert served[0].mean.dtype == torch.float32 and not served.training
