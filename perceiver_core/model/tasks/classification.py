"""Classification: cross-entropy with optional label smoothing; accuracy (and top-k) as metrics.

A batch may carry soft targets `label_probs` [B, K] (MixUp and CutMix mix two examples' one-hot labels): the loss
then uses them; the metrics always use the hard `label` [B] (the first example's class).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ...config.tasks import ClassificationTaskConfig
from ...interfaces import BuildContext, Task


class ClassificationTask(Task):
    target_keys = ("label", "label_probs")
    loss_name = "cross-entropy (no label smoothing)"  # what metrics() report, so train and eval curves compare

    def __init__(self, config: ClassificationTaskConfig, context: BuildContext):
        super().__init__()
        self.config = config
        known = context.dataset.get("num_classes")
        num_classes = config.num_classes
        if known is not None and known != num_classes:
            names = context.dataset.get("label_names") or []
            shown = f" ({', '.join(map(str, names[:5]))}{', ...' if len(names) > 5 else ''})" if names else ""
            raise ValueError(f"task.num_classes is {num_classes} but the dataset has {known} classes{shown}; "
                             f"set task.num_classes = {known} (e.g. --set task.num_classes={known})")
        self.num_outputs = context.num_outputs = num_classes
        names = context.dataset.get("label_names")
        self.label_names = list(names) if names and len(names) == num_classes else None

    @staticmethod
    def _logits(outputs: torch.Tensor) -> torch.Tensor:
        return outputs[:, 0].float()  # [B, 1, K] -> [B, K]

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class scores [B, K] (the decoder's single query removed)."""
        return self._logits(outputs)

    def loss(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        target = batch["label_probs"] if "label_probs" in batch else batch["label"]  # [B, K] soft or [B] hard
        return F.cross_entropy(self._logits(outputs), target, label_smoothing=self.config.label_smoothing)

    def metrics(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        logits, labels = self._logits(outputs), batch["label"]
        n = labels.shape[0]
        loss = F.cross_entropy(logits, labels, reduction="sum").item()
        correct = (logits.argmax(-1) == labels).sum().item()
        out = {"loss": (loss, n), "accuracy": (correct, n)}
        k = min(self.config.top_k, logits.shape[-1])
        if k > 1:
            topk = logits.topk(k, dim=-1).indices.eq(labels[:, None]).any(-1).sum().item()
            out[f"top{k}_accuracy"] = (topk, n)
        return out

    def postprocess(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        probs = self._logits(outputs).softmax(-1)
        conf, labels = probs.max(-1)
        return [{"label": int(label), "confidence": round(float(p), 4)} for label, p in zip(labels, conf)]

    def top_k(self, outputs: torch.Tensor, k: int) -> list[list[dict[str, Any]]]:
        """The k most probable classes of each example: [{"index", "name", "probability"}, ...] (names from the
        dataset's label_names, which the checkpoint keeps; the index as text when there are none)."""
        probs = self._logits(outputs).softmax(-1)  # [B, K]
        values, indices = probs.topk(min(k, probs.shape[-1]), dim=-1)
        names = self.label_names
        return [[{"index": int(i), "name": names[int(i)] if names else str(int(i)), "probability": round(float(p), 4)}
                 for p, i in zip(row_p, row_i)] for row_p, row_i in zip(values, indices)]
