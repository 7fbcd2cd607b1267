"""`video.pixels`: Perceiver IO's basic decoder with one Fourier query per output pixel, decoding a random subset
of the pixels in training (DeepMind's multimodal autoencoder subsamples its output points the same way).

    latents [B, N, D] + queries = 3-D Fourier features of every pixel (T, H, W) [B, T*H*W, E]
      eval:  cross-attend --> [B, T*H*W, K]
      train: the same for `train_points` pixels drawn at random per step --> {"pixels": [B, P, K], "indices": [P]}

The queries of a subset are rows of the full grid's queries (the grid's linspace positions), so a pixel gets the
same query in training and in evaluation. The task (video.reconstruction) compares the subset with the same pixels
of the target.
"""

from __future__ import annotations

import math

import torch
from perceiver_core import BasicDecoder, BuildContext, ByteArray, Encoded

from .configs import PixelDecoderConfig


class PixelDecoder(BasicDecoder):
    def __init__(self, config: PixelDecoderConfig, context: BuildContext):
        if config.query != "fourier":
            raise ValueError("video.pixels builds Fourier queries of the output pixels: set query = \"fourier\"")
        super().__init__(config, context)
        self.train_points = config.train_points
        self.num_points = math.prod(self.output_index_shape)

    def forward(self, encoded: Encoded, byte_array: ByteArray, output_indices: torch.Tensor | None = None):
        if not self.training or not self.train_points or self.train_points >= self.num_points:
            return super().forward(encoded, byte_array, output_indices)  # [B, T*H*W, K]
        indices = torch.randperm(self.num_points, device=encoded.latents.device)[:self.train_points]  # [P]
        queries = self.build_queries(encoded, byte_array)[:, indices]  # [B, P, E]: rows of the full grid's queries
        return {"pixels": self.head(self.cross_attend(queries, encoded.latents)), "indices": indices}  # [B, P, K]
