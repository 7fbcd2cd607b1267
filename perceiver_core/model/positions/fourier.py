"""Fourier position features, exactly as DeepMind's perceiver.py (and HF, krasserm) compute them.

For an index grid (n_1..n_d): positions x_i = linspace(-1, 1, n_i); frequencies f_k = linspace(1, r_i / 2, K)
per dimension (linear, despite the paper's "log-linear"); features, in this order:
[x_1..x_d (if concat_pos), sin(pi f_k x_i) for all i, k, cos(pi f_k x_i) for all i, k (unless sine_only)],
d(2K+1) channels in all. Explicit positions (point clouds, permuted pixels) replace the grid.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.positions import FourierPositionConfig
from ...interfaces import BuildContext, PositionEncoding


def linear_positions(index_shape: Sequence[int], *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Grid coordinates in [-1, 1]: [prod(index_shape), d], row-major (the last dimension varies fastest)."""
    axes = [torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) for n in index_shape]
    grid = torch.meshgrid(*axes, indexing="ij")  # d tensors of index_shape
    return torch.stack(grid, dim=-1).reshape(-1, len(index_shape))  # [M, d]


def grid_positions_range(index_shape: Sequence[int], start: int, stop: int, *, device=None,
                         dtype=torch.float32) -> torch.Tensor:
    """Rows [start, stop) of `linear_positions(index_shape)`, bit for bit, without building the others: [c, d]."""
    flat = torch.arange(start, stop, device=device)  # [c]
    coords = []
    for n in reversed(index_shape):  # row-major: the last dimension varies fastest
        axis = torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)  # the same values as the full grid's
        coords.append(axis[flat % n])
        flat = flat // n
    return torch.stack(coords[::-1], dim=-1)  # [c, d]


def fourier_features(positions: torch.Tensor, num_bands: int, max_resolution: Sequence[int], *,
                     concat_pos: bool = True, sine_only: bool = False) -> torch.Tensor:
    """positions [..., M, d] in [-1, 1] -> features [..., M, d * (2K + 1)] (fewer without concat_pos/cosines)."""
    d = positions.shape[-1]
    if len(max_resolution) != d:
        raise ValueError(f"max_resolution has {len(max_resolution)} entries but positions have {d} dimensions")
    freqs = torch.stack([torch.linspace(1.0, r / 2.0, num_bands, dtype=positions.dtype, device=positions.device)
                         for r in max_resolution])  # [d, K]
    per_dim = positions[..., :, None] * freqs  # [..., M, d, K]
    per_dim = per_dim.reshape(*positions.shape[:-1], d * num_bands)  # [..., M, d*K]
    parts = [torch.sin(math.pi * per_dim)] if sine_only else [torch.sin(math.pi * per_dim),
                                                              torch.cos(math.pi * per_dim)]
    if concat_pos:
        parts.insert(0, positions)
    return torch.cat(parts, dim=-1)


def fourier_channels(index_dims: int, num_bands: int, concat_pos: bool, sine_only: bool) -> int:
    return index_dims * (num_bands * (1 if sine_only else 2) + (1 if concat_pos else 0))


class FourierPositionEncoding(PositionEncoding):
    """Fourier features of grid or explicit positions; the features of a grid are cached per shape and device.

    Features of a range of elements are computed from those elements' positions alone (`forward_range`), so a
    very large input (16.8M pixels) is streamed to the encoder without its [M, P] features ever existing whole.
    """

    computes_ranges = True

    def __init__(self, config: FourierPositionConfig, context: BuildContext | None = None):
        super().__init__()
        self.config = config
        # Without max_resolution, the grid the model was built for sets the frequencies, so an input of another
        # size gets the positions of its own grid at the frequencies the model was trained with (as HF does).
        self.built_shape = tuple(context.index_shape) if context is not None and context.index_shape else None
        self._cache: dict[tuple, torch.Tensor] = {}
        self.projection: nn.Linear | None = None
        if config.project_to:
            if not config.max_resolution and (context is None or context.index_shape is None):
                raise ValueError("a projected fourier position encoding needs max_resolution or the input's "
                                 "index shape to know its number of features")
            dims = len(config.max_resolution or context.index_shape)
            # [.., M, P] -> [.., M, project_to] (HF's positions_projection)
            self.projection = nn.Linear(fourier_channels(dims, config.num_bands, config.concat_pos,
                                                         config.sine_only), config.project_to)

    def num_channels(self, index_dims: int) -> int:
        c = self.config
        return c.project_to or fourier_channels(index_dims, c.num_bands, c.concat_pos, c.sine_only)

    def forward(self, byte_array: ByteArray) -> torch.Tensor:
        features = self.features(byte_array)  # [B|1, M, P]
        return features if self.projection is None else self.projection(features)

    def forward_range(self, byte_array: ByteArray, start: int, stop: int) -> torch.Tensor:
        """Features of elements [start, stop): [B|1, stop - start, P], equal to forward(...)[:, start:stop]."""
        c = self.config
        if byte_array.positions is not None:
            pos = byte_array.positions[:, start:stop].float()  # [B|1, c, d]
        else:
            pos = grid_positions_range(byte_array.index_shape, start, stop, device=byte_array.data.device)[None]
        res = self._resolution(byte_array.index_shape, pos.shape[-1])
        features = fourier_features(pos, c.num_bands, res, concat_pos=c.concat_pos, sine_only=c.sine_only)
        return features if self.projection is None else self.projection(features)  # [B|1, c, P]

    def _resolution(self, index_shape: tuple[int, ...], d: int) -> tuple[int, ...]:
        res = self.config.max_resolution
        if res is None and self.built_shape is not None and len(self.built_shape) == d:
            res = self.built_shape
        if res is None and len(index_shape) == d:
            res = index_shape
        if res is None:
            raise ValueError(f"explicit {d}-d positions with index shape {index_shape}: set max_resolution")
        return tuple(res)

    def features(self, byte_array: ByteArray) -> torch.Tensor:
        """The unprojected features [B|1, M, P]."""
        c = self.config
        device = byte_array.data.device
        if byte_array.positions is not None:
            pos = byte_array.positions.float()  # [B|1, M, d]
            res = self._resolution(byte_array.index_shape, pos.shape[-1])
            return fourier_features(pos, c.num_bands, res, concat_pos=c.concat_pos, sine_only=c.sine_only)
        key = (byte_array.index_shape, device)
        cached = self._cache.get(key)
        if cached is None:
            shape = byte_array.index_shape
            pos = linear_positions(shape, device=device)  # [M, d]
            cached = fourier_features(pos, c.num_bands, self._resolution(shape, len(shape)),
                                      concat_pos=c.concat_pos, sine_only=c.sine_only)[None]  # [1, M, P]
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = cached
        return cached
