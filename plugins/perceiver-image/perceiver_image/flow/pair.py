"""The raw example of an image pair, as datasets yield it and `augment` / `prepare` read it.

    {"frames": [2, H, W, C] (uint8, or floats in [0, 1]),
     "flow":   [H, W, 2] float, pixels, from frame 0 to frame 1 (optional: absent when predicting),
     "valid":  [H, W] bool (optional: default = where the flow is finite and below 1e9 in length),
     "flow_backward", "valid_backward": the same from frame 1 to frame 0 (optional, for frame reversal)}

A stereo pair is a flow example with u = -disparity and v = 0 (the left view is frame 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from perceiver_core.errors import UserError

INVALID_FLOW = 1e9  # DeepMind's INVALID_FLOW_VALUE: larger values mark unknown flow


def as_frames(frames: Any) -> torch.Tensor:
    """[2, H, W] or [2, H, W, C] (uint8 or floats in [0, 1]) -> float32 [2, H, W, C]."""
    if isinstance(frames, torch.Tensor):
        a = frames.detach().cpu().numpy()
    else:
        a = np.asarray(frames)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[0] != 2:
        raise UserError(f"a frame pair must be [2, H, W] or [2, H, W, C], got shape {list(a.shape)}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def as_flow(flow: Any, shape: tuple[int, int], what: str = "flow") -> torch.Tensor:
    """A flow field [H, W, 2] as float32 (NaN and inf kept: `valid_mask` turns them into invalid pixels)."""
    t = flow.float() if isinstance(flow, torch.Tensor) else torch.from_numpy(np.asarray(flow, dtype=np.float32))
    if tuple(t.shape) != (*shape, 2):
        raise UserError(f"the {what} must be [H, W, 2] = {[*shape, 2]} for frames of {shape[0]}x{shape[1]}, "
                        f"got {list(t.shape)}")
    return t


def valid_mask(flow: torch.Tensor, valid: Any | None = None) -> torch.Tensor:
    """[H, W] bool: the given mask (if any) and where the flow is finite and shorter than INVALID_FLOW."""
    ok = torch.isfinite(flow).all(-1) & (flow.abs().amax(-1) < INVALID_FLOW)
    if valid is not None:
        v = valid if isinstance(valid, torch.Tensor) else torch.from_numpy(np.asarray(valid))
        if tuple(v.shape) != tuple(ok.shape):
            raise UserError(f"the valid mask must be [H, W] = {list(ok.shape)}, got {list(v.shape)}")
        ok &= v.bool()
    return ok


def disparity_to_flow(disparity: Any) -> tuple[np.ndarray, np.ndarray]:
    """A left-view disparity map [H, W] -> (flow [H, W, 2] with u = -d, v = 0; valid: finite and positive)."""
    d = np.asarray(disparity, dtype=np.float32)
    if d.ndim == 3 and d.shape[-1] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise UserError(f"a disparity map must be [H, W], got shape {list(d.shape)}")
    valid = np.isfinite(d) & (d > 0)
    flow = np.zeros((*d.shape, 2), dtype=np.float32)
    flow[..., 0] = np.where(valid, -d, 0.0)
    return flow, valid
