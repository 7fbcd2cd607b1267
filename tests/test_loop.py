"""Extension points of the training loop: callbacks, CSV and TensorBoard loggers, validation data for per-epoch
monitoring with the test split evaluated once at the end, best and last checkpoints, early stopping, gradient
accumulation, EMA of the weights, and the epoch-mean training loss without label smoothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from perceiver_core import UserError, evaluate_model, from_checkpoint, load_registry, select_backend, train
from perceiver_core.runtime.callbacks import Callback

TINY = Path(__file__).parent / "tiny.toml"


def _spec(*overrides):
    return load_registry([TINY], include_default=False).resolve("tiny", ["encoder.dropout=0.0", *overrides])


def _lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_step(self, trainer, step, loss, lr):
        self.events.append(("step", step))

    def on_epoch(self, trainer, epoch, train_loss):
        self.events.append(("epoch", epoch))

    def on_eval(self, trainer, split, metrics):
        self.events.append(("eval", split, sorted(metrics)))

    def on_checkpoint(self, trainer, path, kind):
        self.events.append(("checkpoint", kind, path.name))


def test_validation_split_monitors_each_epoch_and_test_is_evaluated_once(tmp_path):
    recorder = Recorder()
    # 1,293 training examples after holding out 10%: 41 steps an epoch with batches of 32; 2 epochs
    result = train(_spec("train.max_steps=82", "train.val_fraction=0.1", "train.loggers=['csv']"), tmp_path,
                   progress=False, callbacks=[recorder])
    lines = _lines(tmp_path)
    assert [(r["split"], r["epoch"]) for r in lines if r["split"] not in ("train",)] == \
        [("train_epoch", 1), ("val", 1), ("train_epoch", 2), ("val", 2), ("test", 2)]
    assert lines[-1]["accuracy"] == result["accuracy"]  # what train returns is the test split's, evaluated once
    assert [e for e in recorder.events if e[0] == "step"] == [("step", i) for i in range(1, 83)]
    assert [e[1] for e in recorder.events if e[0] == "eval"] == ["val", "val", "test"]
    assert ("checkpoint", "last", "model.safetensors") in recorder.events
    best = [e for e in recorder.events if e[:2] == ("checkpoint", "best")]
    assert best, recorder.events  # kept by validation loss
    best_model = from_checkpoint(tmp_path / "best")
    val_losses = [r["loss"] for r in lines if r["split"] == "val"]
    assert best_model.checkpoint_metadata["metrics"]["val_loss"] == min(val_losses)
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["split"] for r in rows if r["split"] != "train"] == ["train_epoch", "val", "train_epoch", "val", "test"]


def test_epoch_training_loss_has_no_label_smoothing(tmp_path):
    """With a learning rate too small to change the model, the epoch-mean training loss equals the evaluation's
    (unsmoothed) cross-entropy on the training split, not the smoothed loss being minimised."""
    spec = _spec("task.label_smoothing=0.5", "train.lr=1e-12", "train.max_steps=45", "train.warmup_steps=0")
    train(spec, tmp_path, progress=False)  # 45 steps of 32: one epoch over 1,437 examples
    (epoch,) = [r for r in _lines(tmp_path) if r["split"] == "train_epoch"]
    model = from_checkpoint(tmp_path)
    from perceiver_core import build_dataset

    examples = build_dataset(spec).examples("train")
    unsmoothed = evaluate_model(model, examples, batch_size=64, backend=select_backend("cpu"))["loss"]
    assert epoch["loss"] == pytest.approx(unsmoothed, abs=1e-4)


@pytest.mark.slow
def test_early_stopping_on_validation(tmp_path):
    spec = _spec("train.max_steps=400", "train.val_fraction=0.2", "train.lr=1e-12", "train.warmup_steps=0",
                 "train.monitor='accuracy'", "train.early_stopping_patience=2")
    result = train(spec, tmp_path, progress=False)
    assert result["stopped_early"] is True
    vals = [r for r in _lines(tmp_path) if r["split"] == "val"]
    assert len(vals) == 3 and result["step"] == 3 * 36  # 1,150 examples: 36 steps an epoch; best, then 2 worse
    assert _lines(tmp_path)[-1]["split"] == "test"
    with pytest.raises(UserError, match="early_stopping_patience needs validation data"):
        train(_spec("train.early_stopping_patience=2"), tmp_path / "x", progress=False)


def test_gradient_accumulation_equals_a_larger_batch(tmp_path):
    big = train(_spec("data.batch_size=32", "train.max_steps=5"), tmp_path / "big", progress=False)
    small = train(_spec("data.batch_size=16", "train.grad_accumulation=2", "train.max_steps=5"), tmp_path / "small",
                  progress=False)
    assert big["step"] == small["step"] == 5
    a, b = load_file(tmp_path / "big" / "model.safetensors"), load_file(tmp_path / "small" / "model.safetensors")
    for key in a:
        if key.endswith("k_proj.bias"):  # softmax ignores it: its gradient is rounding noise that Adam magnifies
            continue
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
def test_ema_weights_are_saved_and_resume_exactly(tmp_path):
    spec = _spec("train.max_steps=14", "data.batch_size=200", "train.ema_decay=0.9")
    full = train(spec, tmp_path / "full", progress=False)
    train(spec, tmp_path / "part", stop_after=5, progress=False)
    resumed = train(spec, tmp_path / "part", resume=tmp_path / "part", progress=False)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed["accuracy"] == full["accuracy"]
    state = load_file(tmp_path / "full" / "trainer_state.safetensors")
    raw, averaged = state["weights.encoder.latents"], a["encoder.latents"]
    assert not torch.equal(raw, averaged)  # the model file holds the average, the trainer state the raw weights
    no_ema = train(_spec("train.max_steps=14", "data.batch_size=200"), tmp_path / "plain", progress=False)
    assert torch.equal(load_file(tmp_path / "plain" / "model.safetensors")["encoder.latents"], raw)
    assert no_ema["step"] == 14


def test_tensorboard_logger(tmp_path):
    spec = _spec("train.max_steps=4", "train.loggers=['tensorboard']")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r'needs the tensorboard package: pip install "perceiver-core\[tensorboard\]"'):
            train(spec, tmp_path, progress=False)
        return
    train(spec, tmp_path, progress=False)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
