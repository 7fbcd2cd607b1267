"""Classification: cross-entropy with optional label smoothing; accuracy (and top-k) as metrics."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ...config.tasks import ClassificationTaskConfig
from ...interfaces import BuildContext, Task


class ClassificationTask(Task):
    target_keys = ("label",)

    def __init__(self, config: ClassificationTaskConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.num_outputs = config.num_classes
        known = context.dataset.get("num_classes")
        if known is not None and known != config.num_classes:
            raise ValueError(f"task.num_classes is {config.num_classes} but the dataset has {known} classes")
        context.num_outputs = config.num_classes

    @staticmethod
    def _logits(outputs: torch.Tensor) -> torch.Tensor:
        return outputs[:, 0].float()  # [B, 1, K] -> [B, K]

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class scores [B, K] (the decoder's single query removed)."""
        return self._logits(outputs)

    def loss(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(self._logits(outputs), batch["label"], label_smoothing=self.config.label_smoothing)

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
