"""One training loop for every pipeline: autocast by backend, AdamW or LAMB, warm-up + cosine schedule,
gradient clipping, a progress bar, metrics as JSON lines, safetensors checkpoints, exact resume.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..data.loader import make_loader, to_device
from ..errors import UserError
from ..interfaces import Backend, BuildContext
from ..model.pipeline import Pipeline, build_dataset, build_from_spec
from ..registry.spec import PipelineSpec
from .backends import select_backend
from .checkpoint import TRAINER_FORMAT, atomic_save, load_weights, read_safetensors, save_checkpoint
from .distributed import barrier, gather_rng, init_distributed, shutdown, split_batch
from .lock import RunLock
from .metrics import trim_for_resume
from .optim import lr_at, make_optimizer

MODEL_FILE, STATE_FILE, METRICS_FILE = "model.safetensors", "trainer_state.safetensors", "metrics.jsonl"


def autocast_dtype(backend: Backend, precision: str) -> torch.dtype | None:
    """The backend's autocast dtype for `train.precision`; a precision it cannot run is a user error."""
    try:
        return backend.autocast_dtype(precision)
    except ValueError as exc:
        raise UserError(f"train.precision = {precision!r} on the {backend.name} backend: {exc}") from None


def autocast(backend: Backend, precision: str):
    dtype = autocast_dtype(backend, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=backend.device().type, dtype=dtype)


@torch.no_grad()
def evaluate_model(model: Pipeline, examples: Sequence[Mapping[str, Any]], *, batch_size: int, backend: Backend,
                   precision: str = "auto", num_workers: int = 0) -> dict[str, float]:
    """Average the task's metrics over a split (deterministic: no shuffling, no dropout)."""
    was_training = model.training
    model.eval()
    loader = make_loader(examples, model.prepare, batch_size=batch_size, num_workers=num_workers,
                         target_keys=model.task.target_keys)
    sums: dict[str, list[float]] = {}
    device = backend.device()
    for batch in loader:
        batch = to_device(batch, device)
        with autocast(backend, precision):
            outputs = model(batch)
        for name, (total, count) in model.task.metrics(outputs, batch).items():
            acc = sums.setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count
    model.train(was_training)
    return {name: total / max(count, 1) for name, (total, count) in sums.items()}


class Trainer:
    """Trains one pipeline into an output folder (model.safetensors, trainer_state.safetensors, metrics.jsonl)."""

    def __init__(self, spec: PipelineSpec, out_dir: str | Path, *, plugin_manager=None, progress: bool = True):
        from ..plugins.manager import get_plugin_manager

        self.spec, self.out = spec, Path(out_dir)
        self.pm = plugin_manager or get_plugin_manager()
        self.progress = progress
        cfg = spec.train
        self.backend = select_backend(spec.backend, self.pm)
        self.device = self.backend.device()
        self.dist = init_distributed(self.backend.distributed_backend)
        torch.manual_seed(cfg.seed)
        self.dataset = build_dataset(spec, self.pm)
        for split in (cfg.train_split, cfg.eval_split):
            if split not in self.dataset.splits:
                raise UserError(f"pipeline {spec.name!r}: dataset {spec['data'].use!r} has no split {split!r}; "
                                f"splits: {', '.join(self.dataset.splits)}")
        self.model = build_from_spec(spec, BuildContext(dataset=dict(self.dataset.info())),
                                     plugin_manager=self.pm).to(self.device)
        self.train_examples = self.dataset.examples(cfg.train_split)
        self.eval_examples = self.dataset.examples(cfg.eval_split)
        data = spec["data"].config
        self.batch_size = split_batch(data.batch_size, self.dist)  # per process
        self.eval_batch_size = data.eval_batch_size or data.batch_size
        n = len(self.train_examples) // self.dist.world_size
        self.steps_per_epoch = n // self.batch_size if data.drop_last else math.ceil(n / self.batch_size)
        if self.steps_per_epoch == 0:
            raise UserError(f"the training split has {n} examples, fewer than one batch of {self.batch_size}")
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(0.05 * self.total_steps)
        self.optimizer = make_optimizer(self.model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.betas, self.device)
        self.loader = make_loader(self.train_examples, self.model.prepare, batch_size=self.batch_size,
                                  shuffle=data.shuffle, seed=cfg.seed, num_workers=data.num_workers,
                                  drop_last=data.drop_last, target_keys=self.model.task.target_keys,
                                  pin_memory=self.backend.pin_memory(), augment=self.model.preprocessor.augment,
                                  rank=self.dist.rank, world_size=self.dist.world_size)
        if self.backend.should_compile(cfg.compile):
            from ..model.layers.compile import compile_model

            compile_model(self.model, self.backend.compile_options(), "regional")  # attention blocks, in place
        self.forward = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(self.model)  # broadcasts rank 0's initial weights
            torch.manual_seed(cfg.seed + 7919 * self.dist.rank)  # independent dropout masks per process
        # fp16 has too little range for small gradients: scale the loss (bf16 and fp32 need no scaling)
        fp16 = autocast_dtype(self.backend, cfg.precision) == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type) if fp16 else None
        self.step, self.epoch = 0, 0

    # -- state ---------------------------------------------------------------------------------------------
    def save(self, metrics: Mapping[str, Any]) -> None:
        """Checkpoint and trainer state (every process calls this; rank 0 writes)."""
        rng_states = gather_rng(self.dist)
        if not self.dist.is_main:
            return
        save_checkpoint(self.out / MODEL_FILE, self.model, step=self.step, metrics=metrics,
                        plugins=self.pm.distributions())
        opt = self.optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {f"rng.torch.{r}": state for r, state in enumerate(rng_states)}
        scalars: dict[str, dict[str, float]] = {}
        for index, state in opt["state"].items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{index}.{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        meta = {"format": TRAINER_FORMAT, "step": str(self.step), "epoch": str(self.epoch),
                "grad_scaler": json.dumps(self.scaler.state_dict() if self.scaler is not None else None),
                "param_groups": json.dumps(opt["param_groups"]), "optim_scalars": json.dumps(scalars),
                "loader": json.dumps(self.loader.state_dict())}
        atomic_save(tensors, self.out / STATE_FILE, meta)

    def restore(self, folder: str | Path) -> None:
        folder = Path(folder)
        from .checkpoint import FORMAT

        weights, _ = read_safetensors(folder / MODEL_FILE, FORMAT)
        tensors, meta = read_safetensors(folder / STATE_FILE, TRAINER_FORMAT)
        load_weights(self.model, weights, f"{folder / MODEL_FILE} was not trained with pipeline {self.spec.name!r} "
                                          "as it is now (resume with the same pipeline and overrides)")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value.to(self.device)
        for index, values in json.loads(meta["optim_scalars"]).items():
            state.setdefault(int(index), {}).update(values)
        self.optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        rng = [key for key in tensors if key.startswith("rng.torch.")]
        own = f"rng.torch.{self.dist.rank}"
        torch.set_rng_state(tensors[own if own in tensors else rng[0]])
        self.loader.load_state_dict(json.loads(meta["loader"]))
        scaler_state = json.loads(meta.get("grad_scaler", "null"))
        if self.scaler is not None and scaler_state:
            self.scaler.load_state_dict(scaler_state)
        self.step, self.epoch = int(meta["step"]), int(meta["epoch"])

    # -- loop ----------------------------------------------------------------------------------------------
    def run(self, *, resume: str | Path | None = None, stop_after: int | None = None,
            overwrite: bool = False) -> dict[str, Any]:
        """Train (or continue) holding the lock on the output folder: one run per folder."""
        lock = RunLock(self.out).acquire() if self.dist.is_main else None
        try:
            return self._run(resume=resume, stop_after=stop_after, overwrite=overwrite)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, *, resume: str | Path | None, stop_after: int | None, overwrite: bool) -> dict[str, Any]:
        cfg = self.spec.train
        if resume is not None and not any((Path(resume) / f).exists() for f in (MODEL_FILE, STATE_FILE)):
            _note(f"--resume {resume}: no checkpoint there yet (the run stopped before its first one); "
                  "starting from the beginning", self.dist.is_main)
            resume = None
        if resume is None and not overwrite and (self.out / MODEL_FILE).exists() and self.dist.is_main:
            raise UserError(f"{self.out} already holds a trained model; continue it with --resume {self.out}, "
                            "choose another --out, or pass --overwrite to replace it")
        self.out.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.restore(resume)
        main = self.dist.is_main
        if main:
            (self.out / "pipeline.json").write_text(json.dumps(self.spec.to_json(), indent=2) + "\n")
        if main and resume is not None:  # drop what the interrupted run logged after its checkpoint
            for problem in trim_for_resume(Path(resume) / METRICS_FILE, self.out / METRICS_FILE, self.step):
                _note(problem, main)
        log = open(self.out / METRICS_FILE, "a" if resume is not None else "w", encoding="utf-8") if main else None
        bar = _progress(self.total_steps, self.step, self.progress and main)
        metrics: dict[str, Any] = {}
        start = time.perf_counter()
        self.model.train()
        try:
            while self.step < self.total_steps:
                for batch in self.loader:
                    loss = self._train_step(to_device(batch, self.device))
                    self.step += 1
                    bar.update(1)
                    if main and (self.step % cfg.log_every == 0 or self.step == self.total_steps):
                        value = float(loss)
                        if not math.isfinite(value):
                            raise UserError(f"training diverged at step {self.step} (loss {value}); "
                                            "lower train.lr or raise train.warmup_steps")
                        bar.set_postfix(loss=f"{value:.4f}")
                        _write(log, {"step": self.step, "epoch": self.epoch, "split": "train", "loss": value,
                                     "lr": self.optimizer.param_groups[0]["lr"],
                                     "seconds": round(time.perf_counter() - start, 3)})
                    if self.step >= self.total_steps or (stop_after is not None and self.step >= stop_after):
                        break
                self.epoch = self.step // self.steps_per_epoch
                done = self.step >= self.total_steps
                epoch_end = self.step % self.steps_per_epoch == 0
                if main and (done or (epoch_end and self.epoch % cfg.eval_every == 0)):
                    metrics = evaluate_model(self.model, self.eval_examples, batch_size=self.eval_batch_size,
                                             backend=self.backend, precision=cfg.precision)
                    metrics = {k: round(v, 6) for k, v in metrics.items()}
                    _write(log, {"step": self.step, "epoch": self.epoch, "split": cfg.eval_split, **metrics,
                                 "seconds": round(time.perf_counter() - start, 3)})
                    bar.set_postfix({cfg.eval_split + "_" + k: f"{v:.4f}" for k, v in metrics.items()})
                self.save(metrics)
                barrier(self.dist)  # the others wait while rank 0 evaluates and writes
                if stop_after is not None and self.step >= stop_after:
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
        if main:
            from .plot import plot_metrics

            plot_metrics(self.out / METRICS_FILE, self.out / "metrics.png")
        return {**metrics, "step": self.step, "epoch": self.epoch,
                "train_seconds": round(time.perf_counter() - start, 2)}

    def _train_step(self, batch: Mapping[str, Any]) -> torch.Tensor:
        cfg = self.spec.train
        lr = lr_at(self.step, total=self.total_steps, warmup=self.warmup, peak=cfg.lr, min_ratio=cfg.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.backend, cfg.precision):
            outputs = self.forward(batch)
            loss = self.model.task.loss(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            return loss.detach()
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()
        return loss.detach()


def _note(message: str, enabled: bool = True) -> None:
    if enabled:
        print(f"perceiver: note: {message}", file=sys.stderr)


def _write(log, record: Mapping[str, Any]) -> None:
    log.write(json.dumps(record) + "\n")
    log.flush()


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not enabled or None,
                leave=False)


def train(spec: PipelineSpec, out_dir: str | Path, *, resume: str | Path | None = None, stop_after: int | None = None,
          overwrite: bool = False, progress: bool = True, plugin_manager=None) -> dict[str, Any]:
    """Train `spec` into `out_dir`; returns the final evaluation metrics plus step, epoch and wall time.

    An `out_dir` that already holds a model is refused unless `resume` or `overwrite` is given.
    """
    trainer = Trainer(spec, out_dir, plugin_manager=plugin_manager, progress=progress)
    if trainer.device.type == "cpu" and trainer.dist.is_main:  # threads fighting other busy processes
        from .threads import check_threads

        warning = check_threads().warning
        if warning is not None:
            print(f"perceiver: warning: {warning}", file=sys.stderr)
    try:
        return trainer.run(resume=resume, stop_after=stop_after, overwrite=overwrite)
    finally:
        shutdown(trainer.dist)
