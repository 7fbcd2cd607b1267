"""Extension points of the training loop: callbacks, and the loggers and early stopping built on them.

    class Print(Callback):
        def on_eval(self, trainer, split, metrics):
            print(trainer.epoch, split, metrics)

    perceiver_core.train(spec, "runs/x", callbacks=[Print()])

Callbacks run in the main process only. `on_step` after every optimizer step, `on_epoch` with the epoch's mean
training loss (without label smoothing), `on_eval` after each evaluation (the validation split per epoch, the
eval split once at the end), `on_checkpoint` after a checkpoint is written ("last" or "best"). A callback may set
`trainer.should_stop = True` to end training after the current step (early stopping does).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Mapping

from ..errors import UserError
from .files import atomic_write


class Callback:
    """Override what you need; every method does nothing by default."""

    def on_train_start(self, trainer) -> None:
        pass

    def on_step(self, trainer, step: int, loss: float, lr: float) -> None:
        pass

    def on_epoch(self, trainer, epoch: int, train_loss: float) -> None:
        pass

    def on_eval(self, trainer, split: str, metrics: Mapping[str, float]) -> None:
        pass

    def on_checkpoint(self, trainer, path: Path, kind: str) -> None:
        pass

    def on_train_end(self, trainer, result: Mapping[str, Any]) -> None:
        pass


class CsvLogger(Callback):
    """metrics.csv: one row per training log line, epoch mean and evaluation (columns: every key seen)."""

    def __init__(self, path: str | Path):
        self.path, self.rows = Path(path), []

    def _add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        # rewritten whole (the columns can grow) under a temporary name: a full disk keeps the previous file
        atomic_write(self.path, text.getvalue(), "the last checkpoint is intact: free space and continue with "
                     "--resume", fsync=False)

    def on_train_start(self, trainer) -> None:
        if self.path.is_file() and trainer.step > 0:  # a resumed run continues the file
            with open(self.path, newline="", encoding="utf-8") as f:
                self.rows = [dict(r) for r in csv.DictReader(f)]

    def on_step(self, trainer, step, loss, lr):
        if step % trainer.spec.train.log_every == 0 or step == trainer.total_steps:
            self._add({"step": step, "epoch": trainer.epoch, "split": "train", "loss": loss, "lr": lr})

    def on_epoch(self, trainer, epoch, train_loss):
        self._add({"step": trainer.step, "epoch": epoch, "split": "train_epoch", "loss": train_loss})

    def on_eval(self, trainer, split, metrics):
        self._add({"step": trainer.step, "epoch": trainer.epoch, "split": split, **metrics})


class TensorBoardLogger(Callback):
    """Scalars for TensorBoard in `log_dir` (needs the tensorboard package:
    pip install "perceiver-core[tensorboard]")."""

    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError('train.loggers = ["tensorboard"] needs the tensorboard package: '
                            'pip install "perceiver-core[tensorboard]"') from None
        self.writer = SummaryWriter(str(log_dir))

    def on_step(self, trainer, step, loss, lr):
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)

    def on_epoch(self, trainer, epoch, train_loss):
        self.writer.add_scalar("train/epoch_loss", train_loss, trainer.step)

    def on_eval(self, trainer, split, metrics):
        for name, value in metrics.items():
            self.writer.add_scalar(f"{split}/{name}", value, trainer.step)
        self.writer.flush()

    def on_train_end(self, trainer, result):
        self.writer.close()


def improves(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopping(Callback):
    """Stop when the monitored validation metric has not improved for `patience` validations."""

    def __init__(self, monitor: str, patience: int, mode: str, split: str, min_delta: float = 0.0):
        self.monitor, self.patience, self.mode, self.split, self.min_delta = monitor, patience, mode, split, min_delta
        self.best: float | None = None
        self.bad = 0

    def on_eval(self, trainer, split, metrics):
        if split != self.split:
            return
        if self.monitor not in metrics:
            raise UserError(f"train.monitor = {self.monitor!r} is not a metric of this task; metrics: "
                            f"{', '.join(metrics)}")
        if improves(metrics[self.monitor], self.best, self.mode, self.min_delta):
            self.best, self.bad = metrics[self.monitor], 0
        else:
            self.bad += 1
        if self.bad >= self.patience:
            trainer.should_stop = True
            trainer.stopped_early = True

    def state_dict(self) -> dict[str, Any]:  # saved with the trainer state, so a resume stops where a run would
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.bad = state["best"], state["bad"]
