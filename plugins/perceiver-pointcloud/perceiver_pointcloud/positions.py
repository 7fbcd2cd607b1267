"""Position features of points from their own coordinates (no grid): Fourier features, or a learned MLP.

Both are computed point by point from `ByteArray.positions` [B, M, d], so they permute with the points and the
model stays permutation-invariant. (The core's `fourier` encoding sizes its features from the index shape,
which for a cloud is (M,): one dimension, not the coordinates' three.)
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver_core import ByteArray, BuildContext, PositionEncoding, fourier_features

from .configs import PointFourierConfig, PointLearnedConfig


def _positions(byte_array: ByteArray, dims: int, who: str) -> torch.Tensor:
    pos = byte_array.positions  # [B|1, M, d]
    if pos is None:
        raise ValueError(f"{who} needs explicit positions (ByteArray.positions): use it with a point-cloud "
                         "preprocessor such as pointcloud.points")
    if pos.shape[-1] != dims:
        raise ValueError(f"{who} was configured for {dims}-d coordinates, the input has {pos.shape[-1]}")
    return pos


class PointFourierEncoding(PositionEncoding):
    """[B, M, d] coordinates in the unit sphere -> [B, M, d(2K + 1)]: DeepMind's Fourier features of the
    coordinates themselves (frequencies 1 .. max_resolution / 2, linear)."""

    computes_ranges = True

    def __init__(self, config: PointFourierConfig, context: BuildContext | None = None):
        super().__init__()
        self.config = config

    def num_channels(self, index_dims: int) -> int:
        c = self.config  # the coordinates' dimensions, whatever the index shape's
        return c.dims * (c.num_bands * (1 if c.sine_only else 2) + (1 if c.concat_pos else 0))

    def _features(self, pos: torch.Tensor) -> torch.Tensor:
        c = self.config
        return fourier_features(pos, c.num_bands, (c.max_resolution,) * c.dims, concat_pos=c.concat_pos,
                                sine_only=c.sine_only)

    def forward(self, byte_array: ByteArray) -> torch.Tensor:
        return self._features(_positions(byte_array, self.config.dims, "pointcloud.fourier"))  # [B, M, P]

    def forward_range(self, byte_array: ByteArray, start: int, stop: int) -> torch.Tensor:
        pos = _positions(byte_array, self.config.dims, "pointcloud.fourier")[:, start:stop]
        return self._features(pos)  # [B, stop - start, P]


class PointLearnedEncoding(PositionEncoding):
    """[B, M, d] -> [B, M, P] through Linear(d, H), GELU, Linear(H, P): learned, and still per point."""

    def __init__(self, config: PointLearnedConfig, context: BuildContext | None = None):
        super().__init__()
        self.config = config
        self.mlp = nn.Sequential(nn.Linear(config.dims, config.hidden_channels), nn.GELU(),
                                 nn.Linear(config.hidden_channels, config.num_channels))

    def num_channels(self, index_dims: int) -> int:
        return self.config.num_channels

    def forward(self, byte_array: ByteArray) -> torch.Tensor:
        pos = _positions(byte_array, self.config.dims, "pointcloud.learned")  # [B, M, d]
        return self.mlp(pos.to(self.mlp[0].weight.dtype))  # [B, M, P]
