"""`patches`: a raw array on a grid [*grid, C] -> one input element per non-overlapping patch.

Space-to-depth in any number of dimensions, in DeepMind's (and HF's `space_to_depth`) order: a patch's values are
its offsets row-major, channels last. A waveform [30720, 1] in 16-sample patches is [1920, 16] (HF's
PerceiverAudioPreprocessor, prep_type "patches"); a clip [16, 224, 224, 3] in 1 x 4 x 4 patches is
[16 * 56 * 56, 48] (HF's PerceiverImagePreprocessor for video, prep_type "patches"). Nothing is learned.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from ...byte_array import ByteArray
from ...config.multimodal import PatchesConfig
from ...errors import InputSizeError
from ...interfaces import BuildContext, Preprocessor


def grid_patches(x: torch.Tensor, patch_size: tuple[int, ...]) -> torch.Tensor:
    """x [B, *grid, C] -> [B, prod(grid / patch), prod(patch) * C] (patch offsets row-major, channels last)."""
    b, *grid, c = x.shape
    d = len(patch_size)
    split = [b]
    for n, p in zip(grid, patch_size):
        split += [n // p, p]
    x = x.reshape(*split, c)  # [B, g1, p1, g2, p2, ..., C]
    order = [0, *range(1, 2 * d, 2), *range(2, 2 * d + 1, 2), 2 * d + 1]
    x = x.permute(order)  # [B, g1, g2, .., p1, p2, .., C]
    return x.reshape(b, math.prod(n // p for n, p in zip(grid, patch_size)), math.prod(patch_size) * c)


class PatchesPreprocessor(Preprocessor):
    tensor_input = "values"  # model({"values": x [B, *grid, C]})

    def __init__(self, config: PatchesConfig, context: BuildContext | None = None):
        super().__init__()
        c = config
        if len(c.patch_size) != len(c.grid_shape):
            raise ValueError(f"patches: patch_size {list(c.patch_size)} needs one size per grid axis of "
                             f"grid_shape {list(c.grid_shape)}")
        if any(n % p for n, p in zip(c.grid_shape, c.patch_size)):
            raise ValueError(f"patches: patch_size {list(c.patch_size)} does not divide grid_shape "
                             f"{list(c.grid_shape)}")
        self.config = c
        self.index_shape = tuple(n // p for n, p in zip(c.grid_shape, c.patch_size))
        self.output_channels = math.prod(c.patch_size) * c.channels

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        if c.key not in example:
            raise InputSizeError(f"patches: the example has no {c.key!r} (keys: {', '.join(map(str, example))})")
        x = torch.as_tensor(np.asarray(example[c.key], dtype=np.float32))
        if tuple(x.shape) == c.grid_shape:
            x = x[..., None]
        if tuple(x.shape) != (*c.grid_shape, c.channels):
            raise InputSizeError(f"patches: {c.key!r} must have shape {[*c.grid_shape, c.channels]}, got "
                                 f"{list(x.shape)}")
        if c.scale != 1.0 or c.offset != 0.0:
            x = x * c.scale + c.offset
        return {"values": x}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        x = batch["values"]  # [B, *grid, C]
        c = self.config
        if x.dim() == len(c.grid_shape) + 1:
            x = x[..., None]
        if tuple(x.shape[1:]) != (*c.grid_shape, c.channels):
            raise ValueError(f"batch['values'] must be [B, {', '.join(map(str, (*c.grid_shape, c.channels)))}], "
                             f"got {list(x.shape)}")
        patches = grid_patches(x.float() if not x.is_floating_point() else x, c.patch_size)  # [B, M, p * C]
        return ByteArray(patches, self.index_shape, modality="patches")
