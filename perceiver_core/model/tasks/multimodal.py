"""`multimodal`: several outputs, one loss (Perceiver IO's multimodal autoencoding).

Each output named in the config has its loss: `mse` (reconstruction of a [B, points, channels] target, at the
points the decoder decoded: all of them, or the subset it reports as `<name>.indices`) or `cross_entropy` (a class
label, the output's single point); the training loss is their weighted sum. Metrics: `loss` (the weighted sum),
and per output `<name>_loss`, plus `<name>_accuracy` for a label.

`perceiver predict` writes a reconstruction as files a person can watch or hear when the input of the same name
has a preprocessor with `save_values(values [O, K] in target units, path_stem) -> [paths]` (perceiver-video:
a GIF of the frames, perceiver-audio's waveform: a WAV): STEM.<output>.reconstruction.* beside STEM.<output>.input.*.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ...config.multimodal import MultimodalTaskConfig
from ...errors import UserError
from ...interfaces import BuildContext, Outputs, Task


class MultimodalTask(Task):
    loss_name = "weighted sum of the outputs' losses"

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

    def predict(self, model: Any, batch: Mapping[str, torch.Tensor]) -> list[Any]:
        """`postprocess`, plus (for `save_prediction`) the values of each reconstruction whose input's
        preprocessor can write them as files."""
        outputs = model(batch)
        preds = self.postprocess(outputs, batch)
        inputs = getattr(model, "preprocessor", None)
        names = getattr(inputs, "names", ())
        savers = {}
        for name in self.names:
            pre = inputs[name] if name in names else None
            if self.config.outputs[name].loss != "mse" or not hasattr(pre, "save_values"):
                continue
            savers[name] = pre
            values = self._output(outputs, name).detach().float().cpu()  # [B, O, K]
            target = (self._target(name, outputs, batch).detach().float().cpu()
                      if self.config.outputs[name].target in batch else None)
            for i, p in enumerate(preds):
                p[name]["values"] = values[i]
                if target is not None:
                    p[name]["input_values"] = target[i]
        self._savers = savers  # a plain dict: not registered as submodules
        return preds

    def save_prediction(self, prediction: Any, out_dir: Any, stem: str) -> Any:
        """STEM.<output>.reconstruction.* (and STEM.<output>.input.*) for outputs whose preprocessor writes files."""
        savers = getattr(self, "_savers", {})
        out = {}
        for name, row in prediction.items():
            row = dict(row) if isinstance(row, Mapping) else row
            if isinstance(row, dict) and "values" in row:
                files = []
                out_dir.mkdir(parents=True, exist_ok=True)
                values, target = row.pop("values"), row.pop("input_values", None)
                if name in savers:
                    if target is not None:
                        files += savers[name].save_values(target, out_dir / f"{stem}.{name}.input")
                    files += savers[name].save_values(values, out_dir / f"{stem}.{name}.reconstruction")
                row["files"] = [str(f) for f in files]
            out[name] = row
        return out
