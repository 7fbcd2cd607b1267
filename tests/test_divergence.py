"""A run whose loss becomes NaN or infinite stops with one line naming the step and what to change, before it logs,
evaluates or saves anything more: the checkpoint on disk stays the last good one, and metrics.jsonl stays JSON that
any reader parses (a non-finite value is written as null, never as a bare NaN)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from safetensors.torch import load_file

from perceiver_core import UserError, load_registry, train
from perceiver_core.runtime.callbacks import Callback

TINY = Path(__file__).parent / "tiny.toml"


class Explode(Callback):
    """After the first checkpoint, a learning rate no model survives (as a too-high one does, only sooner)."""

    def on_checkpoint(self, trainer, path, kind):
        trainer.spec.train = trainer.spec.train.model_copy(update={"lr": 1e30})


def _strict_json(line: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(line, parse_constant=refuse)


def test_a_diverged_run_stops_at_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # 1,437 examples / 500 -> 3 steps an epoch; checkpoints at 3, 6, 9; the loss is logged only at the end
    spec = load_registry([TINY], include_default=False).resolve(
        "tiny", ["train.max_steps=9", "train.log_every=100", "data.batch_size=500"])
    with pytest.raises(UserError) as info:
        train(spec, tmp_path, progress=False, callbacks=[Explode()])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("training diverged at step 5: the training loss is nan; the last good checkpoint "
                              f"(step 3) in {tmp_path} is unchanged; lower the learning rate (e.g. --set "
                              "train.lr="), message
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 3
    weights = load_file(tmp_path / "model.safetensors")
    assert all(bool(v.isfinite().all()) for v in weights.values())
    records = [_strict_json(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 3


def test_non_finite_metrics_are_written_as_null(tmp_path):
    from perceiver_core.runtime.training import _write

    with open(tmp_path / "metrics.jsonl", "w", encoding="utf-8") as log:
        _write(log, {"step": 3, "split": "test", "loss": math.nan, "psnr": math.inf, "accuracy": 0.5})
    line = (tmp_path / "metrics.jsonl").read_text()
    assert _strict_json(line) == {"step": 3, "split": "test", "loss": None, "psnr": None, "accuracy": 0.5}
