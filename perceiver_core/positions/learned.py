"""Learned position embeddings: one trainable vector per input element (Perceiver IO's "trainable" encoding)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..byte_array import ByteArray
from ..config.positions import LearnedPositionConfig
from ..interfaces import BuildContext, PositionEncoding
from ..modules.attention import trunc_normal_


class LearnedPositionEncoding(PositionEncoding):
    def __init__(self, config: LearnedPositionConfig, context: BuildContext):
        super().__init__()
        index_shape = context.require("index_shape", "the learned position encoding")
        self.index_shape = tuple(index_shape)
        self.embedding = nn.Parameter(torch.empty(math.prod(index_shape), config.num_channels))  # [M, P]
        trunc_normal_(self.embedding, std=config.init_scale)

    def num_channels(self, index_dims: int) -> int:
        return self.embedding.shape[1]

    def forward(self, byte_array: ByteArray) -> torch.Tensor:
        if byte_array.num_elements != self.embedding.shape[0]:
            raise ValueError(f"learned positions were built for {self.embedding.shape[0]} elements "
                             f"{self.index_shape}, got {byte_array.num_elements} {byte_array.index_shape}")
        return self.embedding[None]  # [1, M, P]
