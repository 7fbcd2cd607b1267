"""One training loop for every pipeline: autocast by backend, AdamW or LAMB, warm-up + cosine schedule,
gradient clipping, a progress bar, metrics as JSON lines, safetensors checkpoints, exact resume.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..data.holdout import hold_out
from ..data.loader import ChainAugment, make_loader, to_device
from ..errors import UserError
from ..interfaces import BuildContext
from ..model.layers.residual import check_residual_dtype
from ..model.pipeline import build_dataset, build_from_spec
from ..registry.spec import PipelineSpec
from .backends import select_backend
from .callbacks import Callback, CsvLogger, EarlyStopping, TensorBoardLogger
from .checkpoint import (
    CONFIG_FILE,
    TRAINER_FORMAT,
    UNIT_FILE,
    load_weights,
    model_payload,
    read_safetensors,
    resolve_unit,
    save_checkpoint,
    write_config_json,
    write_unit,
)
from .distributed import barrier, gather_rng, init_distributed, shutdown, split_batch
from .divergence import DivergenceGuard
from .ema import EMA
from .faults import fault_point
from .files import atomic_write
from .lock import RunLock
from .evaluate import autocast, autocast_dtype, evaluate_model
from .metrics import trim_for_resume
from .optim import lr_at, make_optimizer

MODEL_FILE, STATE_FILE, METRICS_FILE = "model.safetensors", "trainer_state.safetensors", "metrics.jsonl"
_KEPT = "the files already in the run folder are intact: free space and "  # what a failed write of a run file says


class Trainer:
    """Trains one pipeline into an output folder (model.safetensors, trainer_state.safetensors, metrics.jsonl)."""

    def __init__(self, spec: PipelineSpec, out_dir: str | Path, *, plugin_manager=None, progress: bool = True,
                 resuming: bool = False, callbacks: Sequence[Callback] = ()):
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
        for split in (cfg.train_split, cfg.eval_split, *([cfg.val_split] if cfg.val_split else [])):
            if split not in self.dataset.splits:
                raise UserError(f"pipeline {spec.name!r}: dataset {spec['data'].use!r} has no split {split!r}; "
                                f"splits: {', '.join(self.dataset.splits)}")
        self.model = build_from_spec(spec, BuildContext(dataset=dict(self.dataset.info())),
                                     plugin_manager=self.pm)
        check_residual_dtype(spec["encoder"].config, autocast_dtype(self.backend, cfg.precision))
        self.init_report = None
        if spec.init_from is not None:  # fine-tuning (a resumed run restores its own weights instead)
            from .transfer import freeze, init_weights

            if not resuming:
                self.init_report = init_weights(self.model, spec.init_from)
            frozen = freeze(self.model, spec.init_from.freeze)
            if self.init_report is not None:
                self.init_report.frozen = frozen
                if self.dist.is_main:
                    print(f"perceiver: {self.init_report.describe()}", file=sys.stderr, flush=True)
        # fsdp: parameters, gradients and optimizer state sharded over the processes (before the optimizer is made);
        # the model stays on the host until then and goes to the device block by block, each as it is sharded
        self.fsdp = self.dist.enabled and cfg.parallel == "fsdp"
        if not self.fsdp:
            self.model.to(self.device)
        if cfg.parallel == "fsdp" and not self.dist.enabled:
            _note("train.parallel = 'fsdp' with one process: nothing to shard, the model trains whole (launch with "
                  "torchrun --nproc-per-node N to shard it over N processes)")
        if self.fsdp:
            from .fsdp import check_supported, shard_model

            check_supported(cfg, autocast_dtype(self.backend, cfg.precision), self.spec)
            shard_model(self.model, self.device, self.dist.world_size)
            from ..model.layers import kernels

            # the chunked (split-key) cross-attend calls a block's layers, not the sharded block: plain path only
            kernels.force_plain(+1)
        self.train_examples = self.dataset.examples(cfg.train_split)
        self.eval_examples = self.dataset.examples(cfg.eval_split)
        # validation: a split of the dataset, or a seeded fraction of the training split; then per-epoch monitoring
        # (best checkpoint, early stopping) uses it and the eval split is evaluated once at the end
        self.val_examples, self.val_name = None, None
        if cfg.val_split and cfg.val_fraction:
            raise UserError("set train.val_split or train.val_fraction, not both")
        if cfg.val_split:
            self.val_examples, self.val_name = self.dataset.examples(cfg.val_split), cfg.val_split
        elif cfg.val_fraction:
            self.train_examples, self.val_examples = hold_out(self.train_examples, cfg.val_fraction, cfg.seed)
            self.val_name = "val"
        if cfg.early_stopping_patience is not None and self.val_examples is None:
            raise UserError("train.early_stopping_patience needs validation data (train.val_split or "
                            "train.val_fraction): early stopping never looks at the test split")
        self.monitor_mode = cfg.monitor_mode if cfg.monitor_mode != "auto" else (
            "min" if "loss" in cfg.monitor else "max")
        data = spec["data"].config
        self.batch_size = split_batch(data.batch_size, self.dist)  # per process
        self.eval_batch_size = data.eval_batch_size or data.batch_size
        n = len(self.train_examples) // self.dist.world_size
        self.batches_per_epoch = n // self.batch_size if data.drop_last else math.ceil(n / self.batch_size)
        if self.batches_per_epoch == 0:
            raise UserError(f"the training split has {n} examples, fewer than one batch of {self.batch_size}")
        self.accumulation = cfg.grad_accumulation  # micro-batches per optimizer step
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / self.accumulation)
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(0.05 * self.total_steps)
        self.optimizer = make_optimizer(self.model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.betas, self.device)
        self.loader = make_loader(self.train_examples, self.model.prepare, batch_size=self.batch_size,
                                  shuffle=data.shuffle, seed=cfg.seed, num_workers=data.num_workers,
                                  drop_last=data.drop_last, target_keys=self.model.task.target_keys,
                                  pin_memory=self.backend.pin_memory(),
                                  augment=ChainAugment(self.dataset.augment, self.model.preprocessor.augment),
                                  rank=self.dist.rank, world_size=self.dist.world_size)
        if self.backend.should_compile(cfg.compile):
            from ..model.layers.compile import compile_model

            compile_model(self.model, self.backend.compile_options(), "regional")  # attention blocks, in place
        self.forward = self.model
        if self.dist.enabled:
            if not self.fsdp:  # (fsdp: every process built the same weights from the same seed, then sharded them)
                from torch.nn.parallel import DistributedDataParallel

                self.forward = DistributedDataParallel(self.model)  # broadcasts rank 0's initial weights
            torch.manual_seed(cfg.seed + 7919 * self.dist.rank)  # independent dropout masks per process
        # fp16 has too little range for small gradients: scale the loss (bf16 and fp32 need no scaling)
        fp16 = autocast_dtype(self.backend, cfg.precision) == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type) if fp16 else None
        self.step, self.epoch = 0, 0
        self.divergence = DivergenceGuard(self.out, cfg.lr, cfg.grad_clip)
        self.ema = EMA(self.model, cfg.ema_decay) if cfg.ema_decay else None
        self.callbacks: list[Callback] = list(callbacks)
        if "csv" in cfg.loggers:
            self.callbacks.append(CsvLogger(self.out / "metrics.csv"))
        if "tensorboard" in cfg.loggers and self.dist.is_main:
            self.callbacks.append(TensorBoardLogger(self.out / "tb"))
        if cfg.early_stopping_patience is not None:
            self.callbacks.append(EarlyStopping(cfg.monitor, cfg.early_stopping_patience, self.monitor_mode,
                                                self.val_name))
        self.should_stop = self.stopped_early = False
        self.best: float | None = None  # best monitored validation value (keep_best)
        self.epoch_loss = [0.0, 0]  # sum and count of the unsmoothed training loss this epoch

    # -- state ---------------------------------------------------------------------------------------------
    def save(self, metrics: Mapping[str, Any]) -> None:
        """Checkpoint and trainer state as one unit (`write_unit`; every process calls this; rank 0 writes).
        Under fsdp every process first helps gather the full model and optimizer state (rank 0 receives them): the
        files are those of an unsharded run."""
        rng_states = gather_rng(self.dist)
        full_weights = full_opt = None
        if self.fsdp:
            from .fsdp import full_model_state, full_optimizer_state

            full_weights = full_model_state(self.model)
            full_opt = full_optimizer_state(self.model, self.optimizer)
        if not self.dist.is_main:
            return
        with self._averaged():  # the model file holds the EMA weights when there are any (what evaluation used)
            weights, model_meta = model_payload(self.model, state=full_weights, step=self.step, metrics=metrics,
                                                plugins=self.pm.distributions())
            if self.ema is not None:  # the training weights come back into these tensors after the block
                weights = {k: v.detach().clone() for k, v in weights.items()}
        opt = full_opt if self.fsdp else self.optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {f"rng.torch.{r}": state for r, state in enumerate(rng_states)}
        if self.ema is not None:  # the raw training weights and their average both resume
            tensors.update({f"ema.{k}": v for k, v in self.ema.shadow.items()})
            tensors.update({f"weights.{k}": v for k, v in self.ema.tracked(self.model).items()})
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
                "loader": json.dumps(self.loader.state_dict()),
                "selection": json.dumps({"best": self.best, "epoch_loss": self.epoch_loss,
                                         "callbacks": {type(c).__name__: c.state_dict() for c in self.callbacks
                                                       if hasattr(c, "state_dict")}})}
        write_unit(self.out, {MODEL_FILE: (weights, model_meta), STATE_FILE: (tensors, meta)}, self.step)
        write_config_json(self.out / CONFIG_FILE, model_meta, weights)
        fault_point("after-save")
        self._notify("on_checkpoint", self.out / MODEL_FILE, "last")

    def restore(self, folder: str | Path) -> None:
        folder = Path(folder)
        from .checkpoint import FORMAT

        names = (MODEL_FILE, STATE_FILE)
        parts = resolve_unit(folder, names)  # both files of one save, or one line (on every process)
        if folder.resolve() == self.out.resolve():  # our own, locked folder: finish a save cut between its renames
            if self.dist.is_main:
                resolve_unit(folder, names, finish=True)
            barrier(self.dist)
            parts = resolve_unit(folder, names)
        weights, model_meta = read_safetensors(parts[MODEL_FILE], FORMAT)
        from ..version import CORE_API_VERSION

        if model_meta["core_api"] != CORE_API_VERSION:
            from ..errors import CheckpointError

            raise CheckpointError(f"{parts[MODEL_FILE]} was written for core API {model_meta['core_api']}; this "
                                  f"perceiver-core reads API {CORE_API_VERSION}")
        tensors, meta = read_safetensors(parts[STATE_FILE], TRAINER_FORMAT)
        processes = sum(1 for key in tensors if key.startswith("rng.torch."))  # one RNG state per process
        if processes and processes != self.dist.world_size:  # each process's share of the data is its own
            launch = "torchrun --nproc-per-node " + str(processes) if processes > 1 else "one process (no torchrun)"
            raise UserError(f"--resume {folder}: that run was trained by {processes} process(es), this one has "
                            f"{self.dist.world_size}; resume it with {launch}: each process's position in the data "
                            "and its RNG were saved, and another number would not continue it exactly")
        loader = None
        if self.fsdp:  # every process reads the full weights and keeps its shard
            from functools import partial

            from .fsdp import load_full_model_state

            loader = partial(load_full_model_state, self.model)
        load_weights(self.model, weights, f"{folder / MODEL_FILE} was not trained with pipeline {self.spec.name!r} "
                                          "as it is now (resume with the same pipeline and overrides)", loader=loader)
        try:
            self._restore_state(folder, tensors, meta)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as exc:
            from ..errors import CheckpointError

            reason = " ".join(str(exc).split())[:300]
            raise CheckpointError(f"{parts[STATE_FILE]} does not fit this run's optimizer, data loader or RNG "
                                  f"({type(exc).__name__}: {reason}); is it damaged? use an undamaged copy, or start "
                                  "again with --overwrite") from None

    def _restore_state(self, folder: Path, tensors: dict[str, torch.Tensor], meta: Mapping[str, str]) -> None:
        """Optimizer, RNG, loader, scaler, EMA and model-selection state from a trainer state file."""
        for key, value in tensors.items():  # a header edited to another dtype must not load as garbage
            wanted = torch.uint8 if key.startswith("rng.") else None
            if (value.dtype != wanted) if wanted is not None else not value.is_floating_point():
                raise ValueError(f"tensor {key} is {str(value.dtype).removeprefix('torch.')}, expected "
                                 f"{'uint8' if wanted is not None else 'a floating-point dtype'}")
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value if self.fsdp else value.to(self.device)
        for index, values in json.loads(meta["optim_scalars"]).items():
            state.setdefault(int(index), {}).update(values)
        if self.fsdp:  # the full state of the file: each process keeps its shard
            from .fsdp import load_full_optimizer_state

            load_full_optimizer_state(self.model, self.optimizer, state, json.loads(meta["param_groups"]))
        else:
            self.optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        rng = [key for key in tensors if key.startswith("rng.torch.")]
        torch.set_rng_state(tensors[f"rng.torch.{self.dist.rank}" if len(rng) > 1 else rng[0]])
        loader_state = json.loads(meta["loader"])
        if not {"root", "num_yielded"} <= set(loader_state):  # what torchdata's Loader saves (its state_dict()
            raise ValueError(f"the data loader state has keys {sorted(loader_state)}, "  # is not side-effect free)
                             "expected root and num_yielded")
        self.loader.load_state_dict(loader_state)
        scaler_state = json.loads(meta.get("grad_scaler", "null"))
        if self.scaler is not None and scaler_state:
            self.scaler.load_state_dict(scaler_state)
        if self.ema is not None:
            ema = {k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("ema.")}
            weights = {k[8:]: v for k, v in tensors.items() if k.startswith("weights.")}
            if not ema:
                raise UserError(f"{folder} was trained without train.ema_decay; resume it without EMA")
            self.ema.shadow = ema
            with torch.no_grad():
                own = self.model.state_dict()
                for key, value in weights.items():
                    own[key].copy_(value)
        selection = json.loads(meta.get("selection", "{}"))
        self.best = selection.get("best")
        self.epoch_loss = list(selection.get("epoch_loss", [0.0, 0]))
        saved = selection.get("callbacks", {})
        for callback in self.callbacks:
            if hasattr(callback, "load_state_dict") and type(callback).__name__ in saved:
                callback.load_state_dict(saved[type(callback).__name__])
        self.step, self.epoch = int(meta["step"]), int(meta["epoch"])
        self.divergence.saved_step = self.step

    # -- loop ----------------------------------------------------------------------------------------------
    def run(self, *, resume: str | Path | None = None, stop_after: int | None = None,
            overwrite: bool = False) -> dict[str, Any]:
        """Train (or continue) holding the lock on the output folder: one run per folder."""
        lock = RunLock(self.out).acquire() if self.dist.is_main else None
        if lock is not None and self.device.type == "cpu":  # threads fighting other busy processes (after the
            from .threads import check_threads  # lock: a refused run prints its one line alone)

            warning = check_threads().warning
            if warning is not None:
                print(f"perceiver: warning: {warning}", file=sys.stderr)
        try:
            return self._run(resume=resume, stop_after=stop_after, overwrite=overwrite)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, *, resume: str | Path | None, stop_after: int | None, overwrite: bool) -> dict[str, Any]:
        cfg = self.spec.train
        if resume is not None and not any((Path(resume) / f).exists() for f in (MODEL_FILE, STATE_FILE, UNIT_FILE)):
            _note(f"--resume {resume}: no checkpoint there yet (the run stopped before its first one); "
                  "starting from the beginning", self.dist.is_main)
            resume = None
        if resume is None and not overwrite and self.dist.is_main and \
                any((self.out / f).exists() for f in (MODEL_FILE, UNIT_FILE)):
            raise UserError(f"{self.out} already holds a trained model; continue it with --resume {self.out}, "
                            "choose another --out, or pass --overwrite to replace it")
        self.out.mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.restore(resume)
        main = self.dist.is_main
        evaluates = main or self.fsdp
        if main:  # whole or not at all: `--resume` reads it back, and a full disk must not leave it torn
            atomic_write(self.out / "pipeline.json", json.dumps(self.spec.to_json(), indent=2) + "\n",
                         _KEPT + ("continue with --resume" if resume is not None else "run again"))
        if main and resume is not None:  # drop what the interrupted run logged after its checkpoint
            for problem in trim_for_resume(Path(resume) / METRICS_FILE, self.out / METRICS_FILE, self.step):
                _note(problem, main)
        log = open(self.out / METRICS_FILE, "a" if resume is not None else "w", encoding="utf-8") if main else None
        bar = _progress(self.total_steps, self.step, self.progress and main)
        metrics: dict[str, Any] = {}
        start = time.perf_counter()
        self.model.train()
        self._notify("on_train_start")
        micro = (self.step % self.steps_per_epoch) * self.accumulation  # micro-batch within the epoch (resume)
        try:
            while self.step < self.total_steps and not self.should_stop:
                pending = 0
                for batch in self.loader:
                    group = micro // self.accumulation
                    size = min(self.accumulation, self.batches_per_epoch - group * self.accumulation)
                    if pending == 0:
                        self._begin_step()
                    loss = self._backward(to_device(batch, self.device), size, last=pending + 1 == size)
                    pending, micro = pending + 1, micro + 1
                    if pending < size:
                        continue
                    self._optimizer_step()
                    pending = 0
                    self.step += 1
                    fault_point("after-step")
                    bar.update(1)
                    lr = self.optimizer.param_groups[0]["lr"]
                    if not self.dist.enabled and self.divergence.first is not None:  # (one process: at once)
                        raise self.divergence.error(*self.divergence.first)
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        value = self._global_loss(loss)  # every process: the global batch's loss
                        if not math.isfinite(value):  # every process stops (none waits for the others forever)
                            first = self.divergence.first
                            raise self.divergence.error(first[0] if first else self.step, value)
                        if main:
                            bar.set_postfix(loss=f"{value:.4f}")
                            _write(log, {"step": self.step, "epoch": self.epoch, "split": "train", "loss": value,
                                         "lr": lr, "seconds": round(time.perf_counter() - start, 3)})
                    if main and self.callbacks:
                        self._notify("on_step", self.step, float(loss), lr)
                    if self.step >= self.total_steps or (stop_after is not None and self.step >= stop_after):
                        break
                # a loss that became NaN or infinite at a step that was not logged stops the run here, before
                # anything is logged, evaluated or saved: the checkpoint on disk stays the last good one
                self.divergence.check(self.dist.enabled, self.device, self.step)
                self.epoch = self.step // self.steps_per_epoch
                done = self.step >= self.total_steps
                epoch_end = self.step % self.steps_per_epoch == 0
                if epoch_end:
                    micro = 0
                if main and (epoch_end or done) and self.epoch_loss[1]:
                    mean = self.epoch_loss[0] / self.epoch_loss[1]  # unsmoothed: comparable with evaluation
                    _write(log, {"step": self.step, "epoch": self.epoch, "split": "train_epoch", "loss": round(mean, 6),
                                 "seconds": round(time.perf_counter() - start, 3)})
                    self._notify("on_epoch", self.epoch, mean)
                if epoch_end or done:
                    self.epoch_loss = [0.0, 0]
                # evaluation: rank 0 alone, or (fsdp: every forward gathers weights from all) every process
                if evaluates and (done or (epoch_end and self.epoch % cfg.eval_every == 0)):
                    if self.val_examples is not None:  # per-epoch monitoring on validation data only
                        val = self._evaluate(self.val_examples)
                        _write(log, {"step": self.step, "epoch": self.epoch, "split": self.val_name, **val,
                                     "seconds": round(time.perf_counter() - start, 3)})
                        bar.set_postfix({self.val_name + "_" + k: f"{v:.4f}" for k, v in val.items()})
                        self._notify("on_eval", self.val_name, val)
                        self._keep_best(val, metrics)
                    else:
                        metrics = self._evaluate(self.eval_examples)
                        _write(log, {"step": self.step, "epoch": self.epoch, "split": cfg.eval_split, **metrics,
                                     "seconds": round(time.perf_counter() - start, 3)})
                        bar.set_postfix({cfg.eval_split + "_" + k: f"{v:.4f}" for k, v in metrics.items()})
                        self._notify("on_eval", cfg.eval_split, metrics)
                if self.dist.enabled:  # every process stops together
                    self.should_stop = _broadcast_flag(self.should_stop, self.device)
                finished = done or self.should_stop
                if evaluates and finished and self.val_examples is not None:
                    metrics = self._evaluate(self.eval_examples)  # the test split, once, at the end
                    _write(log, {"step": self.step, "epoch": self.epoch, "split": cfg.eval_split, **metrics,
                                 "seconds": round(time.perf_counter() - start, 3)})
                    self._notify("on_eval", cfg.eval_split, metrics)
                self.save(metrics)
                self.divergence.saved_step = self.step
                barrier(self.dist)  # the others wait while rank 0 evaluates and writes
                if stop_after is not None and self.step >= stop_after:
                    break
        finally:
            bar.close()
            if log is not None:
                with contextlib.suppress(OSError):  # a full disk was reported where it happened
                    log.close()
        result = {**metrics, "step": self.step, "epoch": self.epoch,
                  "train_seconds": round(time.perf_counter() - start, 2)}
        if self.stopped_early:
            result["stopped_early"] = True
        if main:
            from .plot import plot_metrics

            plot_metrics(self.out / METRICS_FILE, self.out / "metrics.png", loss_name=self.model.task.loss_name)
            self._notify("on_train_end", result)
        return result

    # -- helpers -------------------------------------------------------------------------------------------
    def _notify(self, event: str, *args) -> None:
        if not self.dist.is_main:
            return
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def _averaged(self):
        return self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext()

    def _evaluate(self, examples) -> dict[str, float]:
        cfg = self.spec.train
        if self.fsdp:  # the chunked cross-attend of long inputs calls a block's layers, not the (sharded) block
            from ..model.layers import kernels

            kernels.force_plain(+1)
        try:
            with self._averaged():
                metrics = evaluate_model(self.model, examples, batch_size=self.eval_batch_size, backend=self.backend,
                                         precision=cfg.precision)
        finally:
            if self.fsdp:
                kernels.force_plain(-1)
        return {k: round(v, 6) for k, v in metrics.items()}

    def _keep_best(self, val: Mapping[str, float], metrics: Mapping[str, Any]) -> None:
        """Keep the best model by the monitored validation metric in best/ (never by the test split)."""
        cfg = self.spec.train
        if cfg.monitor not in val:
            raise UserError(f"train.monitor = {cfg.monitor!r} is not a metric of this task; metrics: {', '.join(val)}")
        from .callbacks import improves

        better = improves(val[cfg.monitor], self.best, self.monitor_mode)
        if self.fsdp:  # every process evaluated; rank 0's decision for all (the gathering below is collective)
            better = _broadcast_flag(better, self.device)
        if not better:
            return
        self.best = val[cfg.monitor]
        if cfg.keep_best:
            with self._averaged():
                if self.fsdp:  # every process takes part in gathering the weights
                    from .fsdp import full_model_state

                    state = full_model_state(self.model)
                else:
                    state = None
                if self.dist.is_main:
                    save_checkpoint(self.out / "best" / MODEL_FILE, self.model, state=state, step=self.step,
                                    metrics={f"{self.val_name}_{k}": v for k, v in val.items()},
                                    plugins=self.pm.distributions(), config_json=True)
            self._notify("on_checkpoint", self.out / "best" / MODEL_FILE, "best")

    def _global_loss(self, loss: torch.Tensor) -> float:
        """The mean of every process's loss of this step (each its equal share of the global batch): the loss one
        process would have logged for the whole batch. Collective under torchrun (a device tensor, device group)."""
        if not self.dist.enabled:
            return float(loss)
        total = loss.detach().float().reshape(1).clone()
        torch.distributed.all_reduce(total)
        return float(total) / self.dist.world_size

    def _begin_step(self) -> None:
        cfg = self.spec.train
        lr = lr_at(self.step, total=self.total_steps, warmup=self.warmup, peak=cfg.lr, min_ratio=cfg.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)

    def _backward(self, batch: Mapping[str, Any], size: int, last: bool = True) -> torch.Tensor:
        """Forward and backward of one micro-batch of an optimizer step of `size` micro-batches (under DDP the
        gradients are all-reduced only with the last one; under fsdp they are reduce-scattered after each one, so that
        no process ever holds a whole gradient)."""
        quiet = self.forward.no_sync() if self.dist.enabled and not self.fsdp and not last else contextlib.nullcontext()
        with quiet:
            return self._forward_backward(batch, size)

    def _forward_backward(self, batch: Mapping[str, Any], size: int) -> torch.Tensor:
        cfg = self.spec.train
        with autocast(self.backend, cfg.precision):
            outputs = self.forward(batch)
            loss = self.model.task.loss(outputs, batch)
        with torch.no_grad():  # the epoch's mean training loss, without label smoothing (as evaluation computes it)
            # outputs: a tensor [B, O, K], or named tensors (e.g. HiP's masked reconstruction); no graph under no_grad
            total, count = self.model.task.metrics(outputs, batch).get("loss", (float(loss), 1))
            self.epoch_loss[0] += total
            self.epoch_loss[1] += count
            self.divergence.observe(self.step + 1, total, count)  # (the step being made)
        scaled = loss / size
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        return loss.detach()

    def _optimizer_step(self) -> None:
        cfg = self.spec.train
        if self.scaler is None:
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
        else:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)  # skipped when the scaled gradients overflowed
            self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)

def _broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (to stop; under fsdp, to keep a best model) for every process."""
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=device)
    torch.distributed.broadcast(t, 0)
    return bool(t.item())


def _note(message: str, enabled: bool = True) -> None:
    if enabled:
        print(f"perceiver: note: {message}", file=sys.stderr)


def _write(log, record: Mapping[str, Any]) -> None:
    if log is None:  # a process other than rank 0 (fsdp evaluates on every process; rank 0 logs)
        return
    # NaN and infinities as null: bare NaN is not JSON, and every other reader of the file would fail on it
    record = {k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in record.items()}
    try:
        log.write(json.dumps(record, allow_nan=False) + "\n")
        log.flush()
    except OSError as exc:  # a full disk: one line; the last checkpoint (written before) is whole
        raise UserError(f"could not write {getattr(log, 'name', 'metrics.jsonl')}: {exc.strerror or exc} (is the "
                        "disk full?); the last checkpoint is intact: free space and continue with --resume") from None


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not enabled or None,
                leave=False)


def train(spec: PipelineSpec, out_dir: str | Path, *, resume: str | Path | None = None, stop_after: int | None = None,
          overwrite: bool = False, progress: bool = True, plugin_manager=None,
          callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Train `spec` into `out_dir`; returns the final evaluation metrics plus step, epoch and wall time.

    An `out_dir` that already holds a model is refused unless `resume` or `overwrite` is given.
    """
    trainer = Trainer(spec, out_dir, plugin_manager=plugin_manager, progress=progress, resuming=resume is not None,
                      callbacks=callbacks)
    info, finished = trainer.dist, False
    try:
        result = trainer.run(resume=resume, stop_after=stop_after, overwrite=overwrite)
        if trainer.init_report is not None:
            result["init"] = trainer.init_report.to_json()
        finished = True
        return result
    finally:
        if info.enabled:
            # The model, optimizer and the collective handles they hold go now, while the interpreter is whole: left
            # to the garbage collector at exit, a gloo worker thread may free a tensor after Python has finalised
            # (SIGABRT, "terminate called without an active exception", seen under FSDP2).
            trainer = None
            gc.collect()
        shutdown(info, wait=finished)
