"""Learned position embeddings: one trainable vector per input element (Perceiver IO's "trainable" encoding)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...byte_array import ByteArray
from ...config.positions import LearnedPositionConfig
from ...errors import InputSizeError
from ...interfaces import BuildContext, PositionEncoding
from ..layers.attention import trunc_normal_


class LearnedPositionEncoding(PositionEncoding):
    def no_weight_decay(self) -> set[str]:
        """Position embeddings are not decayed."""
        return {"embedding"}

    def __init__(self, config: LearnedPositionConfig, context: BuildContext):
        super().__init__()
        index_shape = context.require("index_shape", "the learned position encoding")
        self.index_shape = tuple(index_shape)
        self.embedding = nn.Parameter(torch.empty(math.prod(index_shape), config.num_channels))  # [M, P]
        trunc_normal_(self.embedding, std=config.init_scale)
        self.interpolate = config.interpolate
        # [M, P] -> [M, project_to] (HF's positions_projection)
        self.projection = nn.Linear(config.num_channels, config.project_to) if config.project_to else None

    def num_channels(self, index_dims: int) -> int:
        return self.projection.out_features if self.projection is not None else self.embedding.shape[1]

    def resized(self, index_shape: tuple[int, ...]) -> torch.Tensor:
        """The embedding [M', P] for another 2-d index shape, resized bicubically (HF's interpolate_pos_encoding)."""
        if len(self.index_shape) != 2 or len(index_shape) != 2:
            raise ValueError(f"learned positions can only be interpolated between 2-d index shapes, "
                             f"not {self.index_shape} -> {index_shape}")
        h, w = self.index_shape
        grid = self.embedding.reshape(1, h, w, -1).permute(0, 3, 1, 2)  # [1, P, H, W]
        grid = F.interpolate(grid, size=tuple(index_shape), mode="bicubic", align_corners=False)  # [1, P, H', W']
        return grid.flatten(2).transpose(1, 2)[0]  # [M', P]

    def forward(self, byte_array: ByteArray) -> torch.Tensor:
        embedding = self.embedding  # [M, P]
        if tuple(byte_array.index_shape) != self.index_shape:
            if self.interpolate:
                embedding = self.resized(byte_array.index_shape)
            elif byte_array.num_elements != embedding.shape[0]:
                raise InputSizeError(f"learned positions were built for {self.embedding.shape[0]} elements "
                                     f"{self.index_shape}, got {byte_array.num_elements} {byte_array.index_shape}: "
                                     "give inputs of the built size, or set position.interpolate = true to resize "
                                     "the embedding bicubically")
        if self.projection is not None:
            embedding = self.projection(embedding)
        return embedding[None]  # [1, M, P]
