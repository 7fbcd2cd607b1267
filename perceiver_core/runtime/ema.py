"""EMA: an exponential moving average of a model's weights (`train.ema_decay`), applied for evaluation and saving."""

from __future__ import annotations

import contextlib

import torch


class EMA:
    """An exponential moving average of the model's floating-point parameters and buffers (`decay` per step)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in self.tracked(model).items()}

    @staticmethod
    def tracked(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for key, value in self.tracked(model).items():
            self.shadow[key].lerp_(value.detach(), 1 - self.decay)  # shadow = decay * shadow + (1 - decay) * value

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """The averaged weights in the model for the duration of the block; the training weights afterwards."""
        own = self.tracked(model)
        saved = {k: v.detach().clone() for k, v in own.items()}
        with torch.no_grad():
            for key, value in own.items():
                value.copy_(self.shadow[key])
        try:
            yield
        finally:
            with torch.no_grad():
                for key, value in own.items():
                    value.copy_(saved[key])
