"""The original Perceiver's decoder: average the latents, normalise, project to K outputs."""

from __future__ import annotations

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.decoders import PooledDecoderConfig
from ...interfaces import BuildContext, Decoder, Encoded


class PooledDecoder(Decoder):
    reads_inputs = False  # learned queries / pooling: the input may be streamed to the encoder

    def __init__(self, config: PooledDecoderConfig, context: BuildContext):
        super().__init__()
        channels = context.require("latent_channels", "the pooled decoder")
        num_outputs = context.require("num_outputs", "the pooled decoder")
        self.norm = nn.LayerNorm(channels) if config.layer_norm else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(channels, num_outputs)

    def forward(self, encoded: Encoded, byte_array: ByteArray) -> torch.Tensor:
        pooled = encoded.latents.mean(dim=1, keepdim=True)  # [B, N, D] -> [B, 1, D]
        return self.head(self.dropout(self.norm(pooled)))  # [B, 1, K]
