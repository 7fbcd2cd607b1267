"""Fourier queries: Fourier features of the output points' positions, optionally projected (HF's decoder_query).

All output points: the grid of `output_index_shape` (positions linspace(-1, 1, n)). A subset given by flat
indices: positions -1 + 2 * index / n, as HF computes them for `subsampled_output_points` (note: not the
grid's linspace, which ends at +1; both follow the reference implementations).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ...byte_array import ByteArray
from ...interfaces import Encoded, QueryBuilder
from ..positions.fourier import fourier_channels, fourier_features, linear_positions


class FourierQueries(QueryBuilder):
    def __init__(self, output_index_shape: Sequence[int], num_bands: int, max_resolution: Sequence[int] | None = None,
                 *, concat_pos: bool = True, sine_only: bool = False, project_to: int | None = None):
        super().__init__()
        self.output_index_shape = tuple(output_index_shape)
        self.max_resolution = tuple(max_resolution or output_index_shape)
        self.num_bands, self.concat_pos, self.sine_only = num_bands, concat_pos, sine_only
        features = fourier_channels(len(self.output_index_shape), num_bands, concat_pos, sine_only)
        self.projection = nn.Linear(features, project_to) if project_to else None
        self.num_channels = project_to or features

    def positions(self, output_indices: torch.Tensor | None, device) -> torch.Tensor:
        if output_indices is None:
            return linear_positions(self.output_index_shape, device=device)  # [O, d]
        dims = torch.tensor(self.output_index_shape, device=device)
        coords = torch.stack(torch.unravel_index(output_indices.to(device), self.output_index_shape), dim=1)  # [O', d]
        return -1 + 2 * coords / dims[None, :]

    def forward(self, byte_array: ByteArray, encoded: Encoded,
                output_indices: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        latents = encoded.latents
        pos = self.positions(output_indices, latents.device)
        features = fourier_features(pos, self.num_bands, self.max_resolution, concat_pos=self.concat_pos,
                                    sine_only=self.sine_only).to(latents.dtype)  # [O, P]
        if self.projection is not None:
            features = self.projection(features)  # [O, E]
        return features.unsqueeze(0).expand(latents.shape[0], -1, -1), None  # [B, O, E]
