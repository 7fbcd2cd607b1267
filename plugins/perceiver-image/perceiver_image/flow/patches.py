"""Per-pixel patches of a pair of frames, as DeepMind's `patches_for_flow` and HF's optical-flow input.

For each frame, zero-padded by k // 2, the k x k neighbourhood of every pixel is one vector of k*k*C values in
(row, column, channel) order (TensorFlow's extract_patches order); the two frames' vectors are concatenated,
frame 0 first: 2*k*k*C values per pixel (54 for k = 3 and RGB). HF's PerceiverForOpticalFlow takes the per-frame
patches already extracted, [B, 2, k*k*C, H, W]; both forms give the same features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def frame_patches(frames: torch.Tensor, k: int | tuple[int, int] = 3) -> torch.Tensor:
    """frames [B, T, C, H, W] -> patches [B, T, kh*kw*C, H, W] in (row, column, channel) order, zero-padded."""
    kh, kw = (k, k) if isinstance(k, int) else k
    b, t, c, h, w = frames.shape
    cols = F.unfold(frames.reshape(b * t, c, h, w), kernel_size=(kh, kw), padding=(kh // 2, kw // 2))  # (c, i, j)
    cols = cols.reshape(b, t, c, kh * kw, h, w).transpose(2, 3)  # [B, T, kh*kw, C, H, W]: (i, j) major, channel minor
    return cols.reshape(b, t, kh * kw * c, h, w)


def stack_patches(patches: torch.Tensor) -> torch.Tensor:
    """patches [B, T, P, H, W] -> per-pixel features [B, H, W, T*P], frame-major (HF's space_to_depth, time 2)."""
    b, t, p, h, w = patches.shape
    return patches.permute(0, 3, 4, 1, 2).reshape(b, h, w, t * p)
