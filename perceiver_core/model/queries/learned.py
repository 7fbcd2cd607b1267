"""Learned queries: one trainable vector per output point (Perceiver IO classification and MLM decoders)."""

from __future__ import annotations

import torch
from torch import nn

from ...byte_array import ByteArray
from ...interfaces import Encoded, QueryBuilder
from ..layers.attention import trunc_normal_


class LearnedQueries(QueryBuilder):
    def no_weight_decay(self) -> set[str]:
        """Learned queries are not decayed."""
        return {"query"}

    def __init__(self, num_queries: int, channels: int, init_scale: float = 0.02):
        super().__init__()
        self.num_channels = channels
        self.query = nn.Parameter(torch.empty(num_queries, channels))  # [O, E]
        trunc_normal_(self.query, std=init_scale)

    def forward(self, byte_array: ByteArray, encoded: Encoded,
                output_indices: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        query = self.query if output_indices is None else self.query[output_indices]  # [O', E]
        return query.unsqueeze(0).expand(encoded.latents.shape[0], -1, -1), None  # [B, O', E]
