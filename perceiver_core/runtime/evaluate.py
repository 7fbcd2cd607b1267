"""Evaluation of a model over a split, under the backend's autocast for `train.precision`.

Shared by the training loop (validation, the final test evaluation), `perceiver evaluate` and the benchmarks.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping, Sequence

import torch

from ..data.loader import make_loader, to_device
from ..errors import UserError
from ..interfaces import Backend
from ..model.pipeline import Pipeline


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
