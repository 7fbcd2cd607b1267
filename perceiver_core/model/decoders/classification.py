"""Perceiver IO's classification decoder: learned queries cross-attend to the latents, a linear layer gives K."""

from __future__ import annotations

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.decoders import ClassificationDecoderConfig
from ...interfaces import BuildContext, Decoder, Encoded
from ..layers.attention import CrossAttention, trunc_normal_


class ClassificationDecoder(Decoder):
    reads_inputs = False  # learned queries / pooling: the input may be streamed to the encoder

    def no_weight_decay(self) -> set[str]:
        """The learned output query is not decayed."""
        return {"query"}

    def __init__(self, config: ClassificationDecoderConfig, context: BuildContext):
        super().__init__()
        c = config
        latent_channels = context.require("latent_channels", "the classification decoder")
        num_outputs = context.require("num_outputs", "the classification decoder")
        query_channels = c.query_channels or latent_channels
        self.query = nn.Parameter(torch.empty(c.num_queries, query_channels))  # [O, E]
        trunc_normal_(self.query, std=0.02)
        self.cross_attend = CrossAttention(query_channels, latent_channels, num_heads=c.num_heads,
                                           qk_channels=c.qk_channels, v_channels=c.v_channels,
                                           widening=c.widening, dropout=c.dropout,
                                           use_query_residual=c.use_query_residual)
        self.head = nn.Linear(query_channels, num_outputs)

    def forward(self, encoded: Encoded, byte_array: ByteArray) -> torch.Tensor:
        latents = encoded.latents  # [B, N, D]
        queries = self.query.unsqueeze(0).expand(latents.shape[0], -1, -1)  # [B, O, E]
        decoded = self.cross_attend(queries, latents)  # [B, O, E]
        return self.head(decoded.mean(dim=1, keepdim=True))  # [B, 1, K]
