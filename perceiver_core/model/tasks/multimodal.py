"""`multimodal`: several outputs, one loss (Perceiver IO's multimodal autoencoding).

Each output named in the config has its loss: `mse` (reconstruction of a [B, points, channels] target, at the
points the decoder decoded: all of them, or the subset it reports as `<name>.indices`) or `cross_entropy` (a class
label, the output's single point); the training loss is their weighted sum. Metrics: `loss` (the weighted sum),
and per output `<name>_loss`, plus `<name>_accuracy` for a label.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ...config.multimodal import MultimodalTaskConfig
from ...errors import UserError
from ...interfaces import BuildContext, Outputs, Task


class MultimodalTask(Task):
    def __init__(self, config: MultimodalTaskConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.names = sorted(config.outputs)
        self.target_keys = tuple(dict.fromkeys(config.outputs[n].target for n in self.names))
        self.num_outputs = 0  # each output's head sets its own channels
        context.num_outputs = None

    def _output(self, outputs: Outputs, name: str) -> torch.Tensor:
        if not isinstance(outputs, Mapping) or name not in outputs:
            given = ", ".join(outputs) if isinstance(outputs, Mapping) else "one tensor"
            raise UserError(f"task multimodal: the decoder gives no output {name!r}; use decoder multimodal with an "
                            f"output of that name (outputs: {given})")
        return outputs[name]

    def _target(self, name: str, outputs: Outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        key = self.config.outputs[name].target
        if key not in batch:
            raise UserError(f"task multimodal: output {name!r} needs the batch key {key!r} (keys: "
                            f"{', '.join(sorted(batch))})")
        target = batch[key]
        if self.config.outputs[name].loss == "cross_entropy":
            return target.long().reshape(-1)  # [B]
        out = self._output(outputs, name)  # [B, O', K]
        target = target.reshape(target.shape[0], -1, out.shape[-1])  # [B, O, K]
        indices = outputs.get(f"{name}.indices")
        return target if indices is None else target[:, indices.to(target.device)]  # [B, O', K]

    def _losses(self, outputs: Outputs, batch: Mapping[str, torch.Tensor], reduction: str) -> dict[str, torch.Tensor]:
        losses = {}
        for name in self.names:
            out, target = self._output(outputs, name), self._target(name, outputs, batch)
            if self.config.outputs[name].loss == "cross_entropy":
                losses[name] = F.cross_entropy(out[:, 0].float(), target, reduction=reduction)
            else:
                err = (out.float() - target.float()).square()
                losses[name] = err.mean() if reduction == "mean" else err.flatten(1).mean(1).sum()
        return losses

    def loss(self, outputs: Outputs, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        losses = self._losses(outputs, batch, "mean")
        return sum(self.config.outputs[n].weight * losses[n] for n in self.names)

    def metrics(self, outputs: Outputs, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        with torch.no_grad():
            sums = self._losses(outputs, batch, "sum")  # per-example means, summed over the batch
            n = next(iter(outputs.values())).shape[0]
            out = {"loss": (float(sum(self.config.outputs[k].weight * sums[k] for k in self.names)), n)}
            for name in self.names:
                out[f"{name}_loss"] = (float(sums[name]), n)
                if self.config.outputs[name].loss == "cross_entropy":
                    pred = self._output(outputs, name)[:, 0].argmax(-1)
                    out[f"{name}_accuracy"] = (float((pred == self._target(name, outputs, batch)).sum()), n)
        return out

    def postprocess(self, outputs: Outputs, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        """Per example: each label output's class and confidence; each reconstruction's MSE when the batch holds
        its target, else its shape."""
        n = next(iter(outputs.values())).shape[0]
        preds: list[dict[str, Any]] = [{} for _ in range(n)]
        for name in self.names:
            out = self._output(outputs, name)
            if self.config.outputs[name].loss == "cross_entropy":
                conf, label = out[:, 0].float().softmax(-1).max(-1)
                for p, k, c in zip(preds, label, conf):
                    p[name] = {"label": int(k), "confidence": round(float(c), 4)}
            elif batch is not None and self.config.outputs[name].target in batch:
                mse = (out.float() - self._target(name, outputs, batch).float()).square().flatten(1).mean(1)
                for p, e in zip(preds, mse):
                    p[name] = {"mse": round(float(e), 6)}
            else:
                for p in preds:
                    p[name] = {"shape": list(out.shape[1:])}
        return preds
