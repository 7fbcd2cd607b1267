"""`mae`: masked auto-encoding. The encoder hides a fraction of the input (encoder `hip`, `mask_ratio`), the decoder
reconstructs the hidden elements from their position queries; the loss is the MSE between reconstruction and input
at the hidden elements only, on the values the model sees (the preprocessor's normalised ones).

Metrics: `loss` (MSE per hidden value) and `psnr` = 10 log10(data_range^2 / MSE), per example then averaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...config.hip import MAETaskConfig
from ...errors import UserError
from ...interfaces import BuildContext, Outputs, Task


class MAETask(Task):
    target_keys = ()  # the target is the input itself, handed on by the decoder
    loss_name = "MSE of the hidden elements"

    def __init__(self, config: MAETaskConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.num_outputs = 0  # the decoder reconstructs the input's own channels
        context.num_outputs = 0

    @staticmethod
    def _parts(outputs: Outputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not isinstance(outputs, Mapping) or not {"reconstruction", "mask", "target"} <= set(outputs):
            raise UserError("task mae needs a decoder that reports what it hid: use encoder hip with "
                            "mask_ratio > 0 (e.g. --set encoder.mask_ratio=0.75) and decoder hip")
        return outputs["reconstruction"], outputs["mask"], outputs["target"]

    def _squared_errors(self, outputs: Outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Per example: summed squared error over the hidden values [B], and their count [B]. Only each element's
        own channels count (`outputs["channels"]`; a packed multimodal input pads modalities to the widest)."""
        rec, mask, target = self._parts(outputs)  # [B, M, C], [B, M], [B, M, C]
        width = rec.shape[-1]
        own = outputs.get("channels")
        if own is None:
            own = torch.full(mask.shape[1:], width, dtype=torch.long, device=rec.device)
        real = torch.arange(width, device=rec.device) < own[:, None]  # [M, C]
        err = ((rec.float() - target[..., :width].float()).square() * real).sum(-1)  # [B, M]
        err = (err * mask).sum(-1)  # [B]
        return err, (mask * own).sum(-1)

    def loss(self, outputs: Outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        err, count = self._squared_errors(outputs)
        return err.sum() / count.sum().clamp_min(1)

    def metrics(self, outputs: Outputs, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        err, count = (t.detach() for t in self._squared_errors(outputs))
        mse = err / count.clamp_min(1)  # [B]
        psnr = 10 * torch.log10(self.config.data_range ** 2 / mse.clamp_min(1e-10))  # [B]
        return {"loss": (float(err.sum()), int(count.sum())), "psnr": (float(psnr.sum()), int(psnr.numel()))}

    def postprocess(self, outputs: Outputs, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        """Per example: how many elements were hidden, and the MSE and PSNR of their reconstruction. (The filled-in
        input itself is `fill(outputs)`.)"""
        err, count = (t.detach() for t in self._squared_errors(outputs))
        mse = err / count.clamp_min(1)
        psnr = 10 * torch.log10(self.config.data_range ** 2 / mse.clamp_min(1e-10))
        hidden = self._parts(outputs)[1].sum(-1)
        return [{"hidden": int(h), "mse": round(float(e), 6), "psnr": round(float(p), 3)}
                for h, e, p in zip(hidden, mse, psnr)]

    def fill(self, outputs: Outputs) -> torch.Tensor:
        """The input with its hidden elements replaced by their reconstruction: [B, M, C]."""
        rec, mask, target = self._parts(outputs)
        return torch.where(mask[..., None], rec, target[..., :rec.shape[-1]].to(rec.dtype))
