"""`text.mlm`: masked language modelling on bytes. Loss: cross-entropy on masked positions only (labels != -100);
metrics: loss and accuracy per masked byte; predictions: the text with every [MASK] filled by the argmax byte."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from perceiver_core import BuildContext, Task

from . import tokenizer
from .configs import MaskedLMTaskConfig
from .masking import IGNORE


class MaskedLMTask(Task):
    target_keys = ("labels",)
    loss_name = "cross-entropy of the masked bytes"
    #: `Pipeline.predict` passes the batch too: filling masks needs the input ids

    def __init__(self, config: MaskedLMTaskConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.num_outputs = tokenizer.VOCAB_SIZE
        context.num_outputs = tokenizer.VOCAB_SIZE

    @staticmethod
    def _aligned(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """outputs [B, O, V] for O >= L output positions -> [B, L, V] (the positions of the input)."""
        if outputs.shape[1] < labels.shape[1]:
            raise ValueError(f"the decoder gives {outputs.shape[1]} positions for {labels.shape[1]} input bytes")
        return outputs[:, :labels.shape[1]].float()

    def loss(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        labels = batch["labels"]  # [B, L]
        logits = self._aligned(outputs, labels)  # [B, L, V]
        if not bool((labels != IGNORE).any()):
            return logits.sum() * 0.0  # no masked byte in this batch: no signal, but a graph for backward
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE,
                               label_smoothing=self.config.label_smoothing)

    def metrics(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, int]]:
        labels = batch["labels"]
        logits = self._aligned(outputs, labels)
        masked = labels != IGNORE  # [B, L]
        n = int(masked.sum())
        if n == 0:
            return {"loss": (0.0, 0), "accuracy": (0.0, 0)}
        loss = F.cross_entropy(logits[masked], labels[masked], reduction="sum").item()
        correct = (logits[masked].argmax(-1) == labels[masked]).sum().item()
        return {"loss": (loss, n), "accuracy": (correct, n)}

    def postprocess(self, outputs: torch.Tensor, batch: Mapping[str, torch.Tensor] | None = None) -> list[Any]:
        best = outputs.argmax(-1)  # [B, O]
        if batch is None or "input_ids" not in batch:  # no input to fill: decode the outputs as they are
            return [{"text": tokenizer.decode(row)} for row in best]
        ids = batch["input_ids"]  # [B, L]
        masked = ids == tokenizer.MASK
        filled = torch.where(masked, best[:, :ids.shape[1]].to(ids.device), ids)
        return [{"text": tokenizer.decode(row), "filled": int(m.sum())} for row, m in zip(filled, masked)]
