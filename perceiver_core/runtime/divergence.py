"""Divergence: a training loss that became NaN or infinite stops the run, in one line, before it logs, evaluates or
saves again, so the checkpoint on disk stays the last good one.

Every micro-batch's loss is watched (`observe`), not only the logged ones. One process stops at once; under torchrun
the processes agree at the next check (`check`, a collective), so none waits for the others forever.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..errors import UserError


class DivergenceGuard:
    """This process's first non-finite training loss, and the step of the checkpoint in the output folder.

    out: the run folder (named in the message); lr, grad_clip: the run's, for the advice the message gives.
    """

    def __init__(self, out: Path, lr: float, grad_clip: float | None):
        self.out, self.lr, self.grad_clip = out, lr, grad_clip
        self.saved_step: int | None = None  # the step of the checkpoint in the output folder (None: none yet)
        self.first: tuple[int, float] | None = None  # (step, loss) of this process's first non-finite loss

    def observe(self, step: int, total: float, count: int) -> None:
        """A micro-batch of `step` summed to `total` over `count` elements."""
        if self.first is None and not math.isfinite(float(total)):
            self.first = (step, float(total) / max(count, 1))

    def check(self, distributed: bool, device: torch.device, step: int) -> None:
        """Raise `error` on every process when any process saw a non-finite training loss since the last check
        (collective under torchrun: a device tensor, device group)."""
        bad = self.first is not None
        if distributed:
            flag = torch.tensor([1 if bad else 0], dtype=torch.int64, device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            bad = bool(flag.item())
        if bad:
            raise self.error(*(self.first or (step, float("nan"))))  # (or another process saw it)

    def error(self, step: int, value: float) -> UserError:
        """The one line a diverged run ends with: where, what is kept, and what to change (a NaN loss, as
        Lightning's detect_anomaly reports it, is nearly always a learning rate too high for the model)."""
        kept = (f"the last good checkpoint (step {self.saved_step}) in {self.out} is unchanged" if self.saved_step
                is not None else "no checkpoint was written")
        clip = "set train.grad_clip" if self.grad_clip is None else f"lower train.grad_clip ({self.grad_clip:g})"
        return UserError(f"training diverged at step {step}: the training loss is {value}; {kept}; lower the "
                         f"learning rate (e.g. --set train.lr={self.lr / 10:g}), or raise train.warmup_steps, or "
                         f"{clip}, and train again")
